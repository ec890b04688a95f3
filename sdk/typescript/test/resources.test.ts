import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { InvalidInputError, MongarsClient, NotFoundError } from "../src/index.js";
import { login, skip, unique, user } from "./helpers.js";

describe("route groups", { skip }, () => {
  let client: MongarsClient;
  let threadId: string;
  let turnId: number;

  before(async () => {
    client = await login(user);
    const thread = await client.threads.create(`ts thread ${unique()}`);
    threadId = thread.id;
    const answer = await client.chat.send({ message: "Hello there.", session_id: threadId });
    turnId = answer.turn_id;
  });

  test("history lists the turn just made, in its thread", async () => {
    const items = await client.history.list({ user_id: user[0], session_id: threadId, limit: 5 });
    assert.equal(items.length, 1);
    assert.equal(items[0]!.turn_id, turnId);
    assert.equal(items[0]!.query, "Hello there.");
  });

  test("threads: get, list, messages, rename, delete", async () => {
    const thread = await client.threads.get(threadId);
    assert.equal(thread.message_count, 1);
    const page = await client.threads.list({ limit: 100 });
    assert.ok(page.items.some((t) => t.id === threadId));
    const messages = await client.threads.messages(threadId);
    assert.deepEqual(
      messages.items.map((m) => m.turn_id),
      [turnId],
    );
    const renamed = await client.threads.rename(threadId, "Renamed by the TS SDK");
    assert.equal(renamed.title, "Renamed by the TS SDK");

    const doomed = await client.threads.create();
    await client.threads.delete(doomed.id);
    await assert.rejects(client.threads.get(doomed.id), NotFoundError);
  });

  test("feedback: set, read, delete; then reading it is a 404", async () => {
    const set = await client.feedback.set(turnId, { rating: "down", correction: "General Kenobi." });
    assert.equal(set.rating, "down");
    assert.equal(set.correction, "General Kenobi.");
    const read = await client.feedback.get(turnId);
    assert.equal(read.turn_id, turnId);
    const [item] = await client.history.list({ user_id: user[0], session_id: threadId });
    assert.equal(item!.feedback?.rating, "down");
    await client.feedback.delete(turnId);
    await assert.rejects(client.feedback.get(turnId), NotFoundError);
    await assert.rejects(client.feedback.set(turnId, {}), InvalidInputError);
  });

  test("memory: remember a note, read, edit, search, forget", async () => {
    const word = `zanzibar${unique()}`;
    const note = await client.memory.create(`My locker code word is ${word}.`);
    assert.equal(note.kind, "note");
    assert.equal((await client.memory.get(note.id)).text, note.text);
    const edited = await client.memory.edit(note.id, { text: `My locker code word is ${word}, really.` });
    assert.match(edited.text, /really/);
    const page = await client.memory.list({ kind: "note", limit: 100 });
    assert.ok(page.items.some((m) => m.id === note.id));
    const hits = await client.memory.search({ q: `locker code word ${word}`, k: 5 });
    assert.ok(hits.items.some((h) => h.id === note.id));
    await client.memory.delete(note.id);
    await assert.rejects(client.memory.get(note.id), NotFoundError);
  });

  test("documents: upload a small text, list, search, delete", async () => {
    const word = `heliotrope${unique()}`;
    const upload = await client.documents.upload({
      file: `The gardener's favourite flower is the ${word}. It smells of vanilla.`,
      filename: `flowers-${word}.txt`,
    });
    assert.equal(upload.status, "created");
    const id = upload.document.id;
    assert.ok(upload.document.chunks >= 1);
    const page = await client.documents.list({ limit: 200 });
    assert.ok(page.items.some((d) => d.id === id));
    const found = await client.documents.search({ query: `favourite flower ${word}`, k: 3 });
    assert.ok(found.passages.some((p) => p.document_id === id));
    await client.documents.delete(id);
    await assert.rejects(client.documents.get(id), NotFoundError);
  });

  test("profile: update preferences, read them back, reset", async () => {
    const updated = await client.profile.update({ tone: "friendly", language: "en" });
    assert.equal(updated.explicit.tone, "friendly");
    assert.equal((await client.profile.get()).explicit.language, "en");
    await assert.rejects(
      client.profile.update({ tone: "grumpy" as unknown as "friendly" }),
      InvalidInputError,
    );
    await client.profile.reset();
    assert.equal((await client.profile.get()).explicit.tone ?? null, null);
  });
});
