// The Vercel AI SDK's `openai(model)` (the Responses API by default; OPENAI_BASE_URL and OPENAI_API_KEY from the
// environment): text, a stream, a tool call and its result over two steps, a structured output and a second turn
// by previous response id. Prints what it saw as one JSON object.
import { openai } from "@ai-sdk/openai";
import { generateText, Output, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const model = openai("echo");
const plain = await generateText({ model, prompt: "Hello, gateway" });

const streamed = streamText({ model, prompt: "streamed words here" });
const deltas = [];
for await (const text of streamed.textStream) deltas.push(text);

const calls = [];
const lookup = tool({
  description: "Look a word up",
  inputSchema: z.object({ input: z.string() }),
  execute: async ({ input }) => {
    calls.push(input);
    return "a unit of language";
  },
});
// Echo calls a tool only when one is required: required on the first step, then the model answers.
const withTool = await generateText({
  model,
  prompt: "word",
  tools: { lookup },
  toolChoice: "required",
  stopWhen: stepCountIs(3),
  prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: "auto" } : {}),
});

const structured = await generateText({
  model,
  prompt: '{"word": "hi"}',
  output: Output.object({ schema: z.object({ word: z.string() }) }),
});

const first = await generateText({ model, prompt: "one two three" });
const second = await generateText({
  model,
  prompt: "four five",
  providerOptions: { openai: { previousResponseId: first.response.id } },
});

console.log(
  JSON.stringify({
    plain: plain.text,
    plainResponseId: plain.response.id,
    plainUsage: plain.usage,
    deltas,
    toolCalls: calls,
    toolSteps: withTool.steps.map((step) => step.toolCalls.map((call) => call.toolName)),
    toolOutput: withTool.text,
    structured: structured.output,
    second: second.text,
    secondResponseId: second.response.id,
    secondInputTokens: second.usage.inputTokens,
  }),
);
