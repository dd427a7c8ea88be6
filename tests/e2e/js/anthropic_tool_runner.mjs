// The anthropic Node SDK's tool runner with its defaults (a message thread: the second turn sends only the tool
// result; ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment), two turns. With PAUSE_AFTER_FIRST_TURN
// set it prints the first reply's id and waits for a line on stdin before the second turn (the test expires the
// thread meanwhile). Prints every request's thread, message count and status, then what it saw, as JSON lines.
import { once } from "node:events";
import { createInterface } from "node:readline";
import Anthropic from "@anthropic-ai/sdk";
import { betaTool } from "@anthropic-ai/sdk/helpers/beta/json-schema";

const requests = [];
const client = new Anthropic({
  maxRetries: 0,
  fetch: async (url, init) => {
    const response = await fetch(url, init);
    const body = JSON.parse(init.body);
    requests.push({ thread: body.thread ?? null, messages: body.messages.length, status: response.status });
    return response;
  },
});

const calls = [];
const lookup = betaTool({
  name: "lookup",
  description: "Look a word up",
  inputSchema: { type: "object", properties: { input: { type: "string" } }, required: ["input"] },
  run: async ({ input }) => {
    calls.push(input);
    return "found";
  },
});
const runner = client.beta.messages.toolRunner({
  model: "echo",
  max_tokens: 100,
  tools: [lookup],
  tool_choice: { type: "tool", name: "lookup" },
  messages: [{ role: "user", content: "look this up" }],
  max_iterations: 2,
});

const replies = [];
const lines = process.env.PAUSE_AFTER_FIRST_TURN ? createInterface({ input: process.stdin }) : null;
for await (const reply of runner) {
  replies.push(reply);
  if (replies.length === 1 && lines) {
    console.log(JSON.stringify({ first: reply.id }));
    await once(lines, "line");
  }
}
lines?.close();

console.log(
  JSON.stringify({
    requests,
    calls,
    replies: replies.map((reply) => ({ content: reply.content, inputTokens: reply.usage.input_tokens })),
  }),
);
