#!/usr/bin/env node
/**
 * SDK streaming overhead: the same chat streamed N times through the SDK
 * (`client.chat.stream`) and through raw fetch + eventsource-parser, alternating
 * which goes first. Prints one JSON line:
 *   {"sdk": {tokens_per_s, ttft_ms, ...}, "raw": {...}, "ratio": sdk/raw tokens_per_s}
 * tokens = SSE `delta` events; tokens_per_s = all tokens / all stream time (request
 * sent to `done`); ttft_ms = the median time to the first delta.
 *
 * The live figures include the model and the server, so on a busy machine their
 * ratio is mostly noise. "replay" isolates the clients: the frames of a real answer
 * (captured in the warm-up run) repeated to `--replay-events` deltas, served from a
 * local 127.0.0.1 server as fast as the clients read, both clients alternating.
 * Usage: node bench/stream.mjs --base-url URL --token TOKEN --runs N [--message TEXT]
 *        [--replay-events N (default 20000; 0: off)]
 * Needs `npm run build` first (it imports dist/).
 */
import http from "node:http";
import { parseArgs } from "node:util";

import { createParser } from "eventsource-parser";

import { MongarsClient } from "../dist/src/index.js";

const { values } = parseArgs({
  options: {
    "base-url": { type: "string" },
    token: { type: "string" },
    runs: { type: "string", default: "5" },
    message: { type: "string", default: "Tell me about the sea." },
    "replay-events": { type: "string", default: "20000" },
  },
});
const baseUrl = values["base-url"]?.replace(/\/+$/, "");
if (!baseUrl || !values.token) {
  process.stderr.write("usage: stream.mjs --base-url URL --token TOKEN --runs N [--message TEXT]\n");
  process.exit(2);
}
const runs = Number(values.runs);
const message = values.message;

async function viaSdk(client) {
  const start = performance.now();
  let first = null;
  let tokens = 0;
  for await (const event of client.chat.stream({ message })) {
    if (event.type === "delta") {
      first ??= performance.now();
      tokens += 1;
    }
  }
  return { tokens, seconds: (performance.now() - start) / 1000, ttft: first - start };
}

async function viaRaw(url = baseUrl, record = null) {
  const start = performance.now();
  const response = await fetch(`${url}/api/v1/conversation/chat/stream`, {
    method: "POST",
    headers: { Authorization: `Bearer ${values.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ message }),
  });
  if (!response.ok) throw new Error(`raw stream: HTTP ${response.status} ${await response.text()}`);
  let first = null;
  let tokens = 0;
  let text = "";
  let finished = false;
  const parser = createParser({
    onEvent(event) {
      if (event.event === "delta") {
        first ??= performance.now();
        tokens += 1;
        text += JSON.parse(event.data).text; // what any client does with a delta
      } else if (event.event === "error") {
        throw new Error(`raw stream: ${event.data}`);
      } else {
        finished = true;
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  while (!finished) {
    const { done, value } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    record?.push(text);
    parser.feed(text);
  }
  await reader.cancel();
  return { tokens, seconds: (performance.now() - start) / 1000, ttft: first - start };
}

function summary(samples) {
  const tokens = samples.reduce((n, s) => n + s.tokens, 0);
  const seconds = samples.reduce((n, s) => n + s.seconds, 0);
  const ttfts = samples.map((s) => s.ttft).sort((a, b) => a - b);
  const mid = Math.floor(ttfts.length / 2);
  const median = ttfts.length % 2 ? ttfts[mid] : (ttfts[mid - 1] + ttfts[mid]) / 2;
  const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    tokens_per_s: round(tokens / seconds, 2),
    ttft_ms: round(median, 1),
    tokens,
    seconds: round(seconds, 3),
    runs: samples.length,
  };
}

/** A real answer's frames, its deltas repeated to `count` (ids renumbered), then its end. */
function replayBody(captured, count) {
  const frames = captured.join("").split("\n\n").filter(Boolean);
  const deltas = frames.filter((f) => f.includes("event: delta"));
  const end = frames.filter((f) => !f.includes("event: delta"));
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(deltas[i % deltas.length].replace(/^id: (.*):\d+$/m, `id: $1:${i + 1}`));
  }
  out.push(...end.map((f) => f.replace(/^id: (.*):\d+$/m, `id: $1:${count + 1}`)));
  return Buffer.from(`${out.join("\n\n")}\n\n`);
}

async function replay(body, rounds) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      // In 16 KiB writes, as a server flushing its stream would.
      for (let at = 0; at < body.length; at += 16384) res.write(body.subarray(at, at + 16384));
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const local = new MongarsClient({ baseUrl: url, token: "replay" });
  const sdk = [];
  const raw = [];
  try {
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        sdk.push(await viaSdk(local));
        raw.push(await viaRaw(url));
      } else {
        raw.push(await viaRaw(url));
        sdk.push(await viaSdk(local));
      }
    }
  } finally {
    server.close();
  }
  const result = { sdk: summary(sdk), raw: summary(raw) };
  result.ratio = Math.round((result.sdk.tokens_per_s / result.raw.tokens_per_s) * 1000) / 1000;
  return result;
}

const client = new MongarsClient({ baseUrl, token: values.token });
const sdk = [];
const raw = [];
const captured = [];
let replayed = null;
try {
  await viaRaw(baseUrl, captured); // warm-up (connections, the server's caches) and capture
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      sdk.push(await viaSdk(client));
      raw.push(await viaRaw());
    } else {
      raw.push(await viaRaw());
      sdk.push(await viaSdk(client));
    }
  }
  const replayEvents = Number(values["replay-events"]);
  if (replayEvents > 0) replayed = await replay(replayBody(captured, replayEvents), 6);
} catch (error) {
  process.stderr.write(`bench failed: ${error?.stack ?? error}\n`);
  process.exit(1);
}
const result = { sdk: summary(sdk), raw: summary(raw) };
result.ratio = Math.round((result.sdk.tokens_per_s / result.raw.tokens_per_s) * 1000) / 1000;
if (replayed) result.replay = replayed;
process.stdout.write(`${JSON.stringify(result)}\n`);
