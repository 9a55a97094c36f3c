// Drives the official Langfuse JS SDK (@langfuse/tracing + @langfuse/otel + @langfuse/client)
// the way an application would, against the server named by LANGFUSE_BASE_URL, and prints one
// JSON line with the ids it created and what the client read back. tests/sdk/test_js_sdk.py
// runs it and checks the stored data through the REST API.
//
// Usage: node trace_scores_prompts.mjs <run-id>
// Configuration comes from the environment, as the SDK documents it: LANGFUSE_BASE_URL,
// LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_TRACING_ENVIRONMENT, LANGFUSE_RELEASE.

import { LangfuseClient } from "@langfuse/client";
import { LangfuseSpanProcessor } from "@langfuse/otel";
import {
  createTraceId,
  observe,
  propagateAttributes,
  startActiveObservation,
  startObservation,
  updateActiveObservation,
} from "@langfuse/tracing";
import { DiagConsoleLogger, DiagLogLevel, diag } from "@opentelemetry/api";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const run = process.argv[2];
if (!run) {
  console.error("usage: node trace_scores_prompts.mjs <run-id>");
  process.exit(2);
}

const processor = new LangfuseSpanProcessor();
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
// register() also installs the AsyncLocalStorage context manager that active observations
// and propagateAttributes rely on across awaits.
provider.register();
const langfuse = new LangfuseClient();

function describePrompt(prompt, variables, placeholders) {
  return {
    name: prompt.name,
    version: prompt.version,
    type: prompt.type,
    prompt: prompt.prompt,
    config: prompt.config,
    labels: [...prompt.labels].sort(),
    tags: [...prompt.tags].sort(),
    commitMessage: prompt.commitMessage ?? null,
    isFallback: prompt.isFallback,
    compiled: prompt.compile(variables, placeholders),
  };
}

// ---------------------------------------------------------------------------------------
// Prompts: a text prompt in a folder (the name travels URL-encoded) with two versions, and
// a chat prompt with a placeholder.
const textName = `js-e2e/${run}/greeting`;
const chatName = `js-e2e-chat-${run}`;
await langfuse.prompt.create({
  name: textName,
  prompt: "Hello {{name}}!",
  config: { model: "gpt-4o", temperature: 0.2 },
  labels: ["production"],
  tags: ["js", "e2e"],
  commitMessage: "first draft",
});
await langfuse.prompt.create({
  name: textName,
  prompt: "Hi {{name}}, welcome back.",
  labels: ["staging"],
});
const createdChat = await langfuse.prompt.create({
  name: chatName,
  type: "chat",
  prompt: [
    { role: "system", content: "You are {{persona}}." },
    { type: "placeholder", name: "history" },
    { role: "user", content: "{{question}}" },
  ],
  labels: ["production"],
  config: { model: "gpt-4o-mini" },
});
const textProduction = await langfuse.prompt.get(textName);
const textStaging = await langfuse.prompt.get(textName, { label: "staging" });
const textLatest = await langfuse.prompt.get(textName, { label: "latest" });
const textV1 = await langfuse.prompt.get(textName, { version: 1 });
const chatPrompt = await langfuse.prompt.get(chatName, { type: "chat" });
await langfuse.prompt.update({ name: textName, version: 2, newLabels: ["production"] });
const textPromoted = await langfuse.prompt.get(textName, { cacheTtlSeconds: 0 });
const missing = await langfuse.prompt.get(`js-e2e-missing-${run}`, {
  fallback: "Fallback {{name}}",
  maxRetries: 0,
});
const chatVariables = { persona: "a terse assistant", question: "What does Fathom store?" };
const chatHistory = { history: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }] };

// From here on the SDK reports failures (an export or a score batch the server refused) only
// by logging them: turn those logs into a non-zero exit, so the test names the failed request
// instead of timing out on a missing row. (The fallback fetch above logged its expected 404.)
const sdkErrors = [];
const consoleError = console.error.bind(console);
console.error = (...args) => {
  sdkErrors.push(args.map((a) => (a instanceof Error ? a.stack : String(a))).join(" "));
  consoleError(...args);
};
// OpenTelemetry reports a refused OTLP export through its diag logger, silent by default.
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.ERROR);

// ---------------------------------------------------------------------------------------
// One trace: a root span whose trace attributes are set the v5 way (propagateAttributes),
// with nested observations of every type below it.
const ids = {};
const completionStart = new Date(Date.now() + 250);
let traceId;
let sessionId;

await startActiveObservation("js-request", async (root) => {
  traceId = root.traceId;
  ids["js-request"] = root.id;
  root.update({
    input: { question: "What does Fathom store?" },
    metadata: { tier: "gold", attempt: 2, flags: { beta: true } },
  });
  root.setTraceIO({ input: { user: "What does Fathom store?" }, output: { answer: "Traces." } });
  root.setTraceAsPublic();
  sessionId = `js-session-${run}`;

  await propagateAttributes(
    {
      traceName: `js-e2e-${run}`,
      userId: "js-user-1",
      sessionId,
      tags: ["js-sdk", "e2e"],
      version: "app-2.0",
      metadata: { team: "observability", region: "eu" },
    },
    async () => {
      await startActiveObservation(
        "js-agent",
        async (agent) => {
          ids["js-agent"] = agent.id;
          updateActiveObservation({ input: { goal: "answer" } }, { asType: "agent" });
          langfuse.score.activeObservation({ name: "js-agent-steps", value: 3 });

          await startActiveObservation(
            "js-retriever",
            async (retriever) => {
              ids["js-retriever"] = retriever.id;
              retriever.update({ input: { query: "fathom" }, output: [{ doc: "a" }, { doc: "b" }] });
            },
            { asType: "retriever" },
          );

          // observe() records the arguments as input and the resolved value as output.
          const search = observe(async (query, limit) => ({ query, hits: limit }), {
            name: "js-search-tool",
            asType: "tool",
          });
          await search("fathom", 3);

          // A callback that throws: the SDK marks only the OpenTelemetry status as ERROR.
          try {
            await startActiveObservation(
              "js-flaky-tool",
              async (tool) => {
                ids["js-flaky-tool"] = tool.id;
                throw new Error("upstream timed out");
              },
              { asType: "tool" },
            );
          } catch {
            // expected
          }

          const chain = agent.startObservation("js-chain", { input: "plain text in" }, { asType: "chain" });
          ids["js-chain"] = chain.id;
          const generation = chain.startObservation(
            "js-llm",
            {
              model: "gpt-4o",
              input: [{ role: "user", content: textV1.compile({ name: "Ada" }) }],
              modelParameters: { temperature: 0.2, max_tokens: 256 },
              completionStartTime: completionStart,
              prompt: textV1,
              metadata: { provider: "openai" },
            },
            { asType: "generation" },
          );
          ids["js-llm"] = generation.id;
          generation.update({
            output: { role: "assistant", content: "Traces." },
            usageDetails: { input: 120, output: 30 },
            costDetails: { input: 0.0012, output: 0.0009 },
          });
          generation.end();
          langfuse.score.observation(generation, { name: "js-correct", value: 1, dataType: "BOOLEAN" });
          chain.update({ output: "plain text out" });
          chain.end();

          const event = agent.startObservation(
            "js-cache-miss",
            { input: { key: "q1" }, level: "WARNING", statusMessage: "cache miss" },
            { asType: "event" },
          );
          ids["js-cache-miss"] = event.id;

          const guardrail = agent.startObservation(
            "js-guardrail",
            { input: "Traces.", output: { allowed: true } },
            { asType: "guardrail" },
          );
          ids["js-guardrail"] = guardrail.id;
          guardrail.end();

          const judge = agent.startObservation(
            "js-judge",
            { input: { answer: "Traces." }, output: { score: 0.87 }, level: "DEBUG" },
            { asType: "evaluator" },
          );
          ids["js-judge"] = judge.id;
          judge.end();

          // A prompt propagated to everything in scope: only the generation gets linked.
          await propagateAttributes({ prompt: chatPrompt }, async () => {
            await startActiveObservation(
              "js-chat-llm",
              async (chatGeneration) => {
                ids["js-chat-llm"] = chatGeneration.id;
                chatGeneration.update({
                  input: chatPrompt.compile(chatVariables, chatHistory),
                  output: "Traces.",
                  usageDetails: { input: 1000, output: 500 },
                });
              },
              { asType: "generation" },
            );
            const embedding = startObservation(
              "js-embed",
              { model: "text-embedding-3-small", input: "Traces.", usageDetails: { input: 2 } },
              { asType: "embedding" },
            );
            ids["js-embed"] = embedding.id;
            embedding.end();
          });

          agent.update({ output: { answer: "Traces." } });
        },
        { asType: "agent" },
      );

      // An observation failing with an explicit Langfuse level and status message.
      const failed = startObservation("js-failed-step", {
        level: "ERROR",
        statusMessage: "validation failed",
        output: { ok: false },
      });
      ids["js-failed-step"] = failed.id;
      failed.end();
    },
  );

  root.update({ output: { answer: "Traces.", sources: 2 } });
  langfuse.score.trace(root, { name: "js-helpfulness", value: 0.87, comment: "solid" });
});


langfuse.score.create({
  id: `js-verdict-${run}`,
  traceId,
  name: "js-verdict",
  value: "pass",
  dataType: "CATEGORICAL",
  metadata: { reviewer: "bot" },
});
langfuse.score.create({ sessionId, name: "js-session-csat", value: 4, comment: "happy" });

// A trace with an id of the caller's choosing: the JS way is a seeded id plus a remote parent
// span context (the JS SDK has no as_root flag, so the parent stays an unexported span id).
const seededTraceId = await createTraceId(`js-e2e-seed-${run}`);
const remoteParentId = "0123456789abcdef";
propagateAttributes({ traceName: `js-external-${run}` }, () => {
  const external = startObservation(
    "js-external",
    { input: { from: "queue" } },
    { parentSpanContext: { traceId: seededTraceId, spanId: remoteParentId, traceFlags: 1 } },
  );
  ids["js-external"] = external.id;
  external.end();
});

await langfuse.flush();
await processor.forceFlush();
await provider.shutdown();
await langfuse.shutdown();

if (sdkErrors.length > 0) {
  consoleError(`the SDK logged ${sdkErrors.length} error(s)`);
  process.exit(1);
}

console.log(
  JSON.stringify({
    run,
    traceId,
    sessionId,
    seededTraceId,
    remoteParentId,
    ids,
    completionStartTime: completionStart.toISOString(),
    prompts: {
      textName,
      chatName,
      created: { chat: describePrompt(createdChat, chatVariables, chatHistory) },
      production: describePrompt(textProduction, { name: "Ada" }),
      staging: describePrompt(textStaging, { name: "Ada" }),
      latest: describePrompt(textLatest, { name: "Ada" }),
      version1: describePrompt(textV1, { name: "Ada" }),
      promoted: describePrompt(textPromoted, { name: "Ada" }),
      chat: describePrompt(chatPrompt, chatVariables, chatHistory),
      missing: describePrompt(missing, { name: "Ada" }),
    },
  }),
);
