// The openai Node SDK's `client.responses` (OPENAI_BASE_URL and OPENAI_API_KEY from the environment): create, a
// stream of typed events and the stream helper, a tool call answered by previous response id, structured output
// parsed by the SDK, and a plain second turn. Prints what it saw as one JSON object.
import OpenAI from "openai";
import { zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";

const client = new OpenAI({ maxRetries: 0 });

const plain = await client.responses.create({ model: "echo", input: "Hello, gateway" });

const events = [];
const deltas = [];
const sequence = [];
for await (const event of await client.responses.create({ model: "echo", input: "one two three", stream: true })) {
  events.push(event.type);
  sequence.push(event.sequence_number);
  if (event.type === "response.output_text.delta") deltas.push(event.delta);
}
const helper = client.responses.stream({ model: "echo", input: "four five", store: false });
for await (const _ of helper);
const helped = await helper.finalResponse();

const tools = [
  {
    type: "function",
    name: "lookup",
    description: "Look a word up",
    parameters: { type: "object", properties: { input: { type: "string" } }, required: ["input"] },
    strict: false,
  },
];
const called = await client.responses.create({ model: "echo", input: "word", tools, tool_choice: "required" });
const call = called.output.at(-1);
const answered = await client.responses.create({
  model: "echo",
  previous_response_id: called.id,
  tools,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "a unit of language" }],
});

const parsed = await client.responses.parse({
  model: "echo",
  input: '{"word": "hi"}',
  text: { format: zodTextFormat(z.object({ word: z.string() }), "word") },
});

const first = await client.responses.create({ model: "echo", input: "one two three" });
const second = await client.responses.create({ model: "echo", input: "four five", previous_response_id: first.id });
const items = await client.responses.inputItems.list(second.id, { order: "asc" });

console.log(
  JSON.stringify({
    plain: { text: plain.output_text, status: plain.status, store: plain.store },
    events,
    sequence,
    deltas,
    helped: { text: helped.output_text, store: helped.store },
    call: { type: call.type, name: call.name, arguments: JSON.parse(call.arguments) },
    answered: answered.output_text,
    parsed: parsed.output_parsed,
    second: { text: second.output_text, inputTokens: second.usage.input_tokens, previous: second.previous_response_id },
    secondItems: items.data.map((item) => item.content.map((part) => part.text).join("")),
  }),
);
