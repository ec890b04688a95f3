import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";

import { type ChatCompleted, MongarsClient, type StreamEvent } from "../src/index.js";
import { baseUrl, login, skip, user } from "./helpers.js";

/**
 * A TCP proxy in front of the server that cuts the first streamed response right after
 * it forwarded a `delta`: a dropped connection in the middle of an answer.
 */
function cuttingProxy(target: URL): Promise<{ url: string; connections: () => number; close: () => void }> {
  let connections = 0;
  let cut = false;
  const server = net.createServer((client) => {
    connections += 1;
    const upstream = net.connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      if (!cut && chunk.includes("event: delta")) {
        cut = true;
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 10);
      }
    });
    upstream.on("end", () => client.end());
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        connections: () => connections,
        close: () => server.close(),
      });
    }),
  );
}

describe("chat", { skip }, () => {
  let client: MongarsClient;

  before(async () => {
    client = await login(user);
  });

  test("send returns the whole answer and its turn", async () => {
    const answer = await client.chat.send("What is the capital of France?");
    assert.ok(answer.response.length > 0);
    assert.ok(answer.turn_id > 0);
    assert.ok(answer.session_id);
  });

  test("an SSE stream yields deltas, then done with the turn id; deltas make the response", async () => {
    const stream = client.chat.stream({ message: "Name a colour." });
    const events: StreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const last = events.at(-1)!;
    assert.equal(last.type, "done");
    assert.ok(last.type === "done" && last.result.turn_id > 0);
    const deltas = events.slice(0, -1);
    assert.ok(deltas.length >= 1 && deltas.every((e) => e.type === "delta"));
    const text = deltas.map((e) => (e.type === "delta" ? e.text : "")).join("");
    assert.equal(text, last.type === "done" ? last.result.response : "");
    assert.equal(stream.text, text);
    assert.deepEqual(
      events.map((e) => e.index),
      events.map((_, i) => events[0]!.index + i),
    );
    assert.ok(events.every((e) => e.generation_id === stream.generationId));
  });

  test("leaving a stream and resuming it gives the rest of the same answer", async () => {
    const first = client.chat.stream("Count from one to ten.");
    let head = "";
    for await (const event of first) {
      if (event.type === "delta") head += event.text;
      break; // closes the connection; the answer goes on on the server
    }
    assert.ok(first.generationId);
    const rest = client.chat.resume(first.generationId, first.lastIndex);
    const result = await rest.finalResponse();
    assert.equal(head + rest.text, result.response);
    assert.ok(result.turn_id > 0);
  });

  test("a dropped connection is resumed by the stream itself", async () => {
    const proxy = await cuttingProxy(new URL(baseUrl));
    try {
      const viaProxy = new MongarsClient({ baseUrl: proxy.url, token: client.credential! });
      const stream = viaProxy.chat.stream("Say something about the sea.");
      const result = await stream.finalResponse();
      assert.equal(stream.resumes, 1);
      assert.ok(proxy.connections() >= 2);
      assert.equal(stream.text, result.response);
    } finally {
      proxy.close();
    }
  });

  test("cancel stops a streamed answer: it ends with cancelled", async () => {
    const stream = client.chat.stream("Write a long story about a dragon.");
    const types: string[] = [];
    for await (const event of stream) {
      if (types.length === 0) await stream.cancel();
      types.push(event.type);
    }
    assert.equal(types.at(-1), "cancelled");
  });

  describe("WebSocket", () => {
    const sockets: Array<{ close(): Promise<void> }> = [];
    after(async () => {
      for (const socket of sockets) await socket.close();
    });

    test("chat over a socket: started, deltas, completed", async () => {
      const socket = await client.chat.connect();
      sockets.push(socket);
      assert.equal(socket.connected.user, user[0]);
      const generation = await socket.send("Say hello.");
      const types: string[] = [];
      let completed: ChatCompleted | undefined;
      for await (const event of generation) {
        types.push(event.type);
        if (event.type === "chat.completed") completed = event;
      }
      assert.equal(types[0], "chat.started");
      assert.ok(types.includes("chat.delta"));
      assert.ok(completed && completed.turn_id > 0);
      assert.equal(generation.text, completed!.text);
      assert.equal(generation.threadId, completed!.thread_id);
    });

    test("resume on a new socket after the first one closed", async () => {
      const first = await client.chat.connect();
      const generation = await first.send("Count from one to ten.");
      let head = "";
      for await (const event of generation) {
        if (event.type === "chat.delta") {
          head += event.text;
          break;
        }
      }
      await first.close();

      const second = await client.chat.connect();
      sockets.push(second);
      const rest = await second.resume(generation.generationId, generation.lastIndex);
      const end = await rest.completion();
      assert.equal(end.type, "chat.completed");
      assert.equal(head + rest.text, end.text);
    });

    test("cancel over a socket: the answer ends with chat.cancelled", async () => {
      const socket = await client.chat.connect();
      sockets.push(socket);
      const generation = await socket.send("Write a long story about a dragon.");
      const ack = await generation.cancel();
      assert.equal(ack.ok, true);
      const end = await generation.completion();
      assert.equal(end.type, "chat.cancelled");
    });
  });
});
