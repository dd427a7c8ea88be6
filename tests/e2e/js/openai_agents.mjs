// The OpenAI Agents SDK for JavaScript with its defaults (the Responses API, the client from OPENAI_BASE_URL and
// OPENAI_API_KEY): a plain run, a tool call fed back, a second turn by previous response id, a stream and a
// structured output. Prints what it saw as one JSON object.
import { Agent, run, tool } from "@openai/agents";
import { z } from "zod";

const calls = [];
const lookup = tool({
  name: "lookup",
  description: "Look a word up",
  parameters: z.object({ input: z.string() }),
  execute: async ({ input }) => {
    calls.push(input);
    return "a unit of language";
  },
});

const plain = await run(new Agent({ name: "echoer", model: "echo" }), "Hello, agents");
// Echo calls a tool only when one is required; the SDK resets tool_choice after the call, so the agent finishes.
const tooler = new Agent({ name: "tooler", model: "echo", tools: [lookup], modelSettings: { toolChoice: "required" } });
const withTool = await run(tooler, "word");
const first = await run(new Agent({ name: "echoer", model: "echo" }), "one two three");
const second = await run(new Agent({ name: "echoer", model: "echo" }), "four five", {
  previousResponseId: first.lastResponseId,
});
const streamed = await run(new Agent({ name: "echoer", model: "echo" }), "streamed words here", { stream: true });
const deltas = [];
for await (const text of streamed.toTextStream()) deltas.push(text);
await streamed.completed;
const structured = await run(
  new Agent({ name: "extractor", model: "echo", outputType: z.object({ word: z.string() }) }),
  '{"word": "hi"}',
);

console.log(
  JSON.stringify({
    plain: plain.finalOutput,
    plainResponseId: plain.lastResponseId,
    toolCalls: calls,
    toolOutput: withTool.finalOutput,
    toolModelCalls: withTool.rawResponses.length,
    first: first.finalOutput,
    second: second.finalOutput,
    secondResponseId: second.lastResponseId,
    secondInputTokens: second.rawResponses.at(-1).usage.inputTokens,
    deltas,
    streamed: streamed.finalOutput,
    structured: structured.finalOutput,
  }),
);
