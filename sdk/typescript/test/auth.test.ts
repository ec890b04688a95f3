import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import {
  AuthenticationError,
  MongarsClient,
  MongarsError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from "../src/index.js";
import { admin, baseUrl, login, skip, unique, user } from "./helpers.js";

describe("auth and errors", { skip }, () => {
  let userClient: MongarsClient;
  let adminClient: MongarsClient;

  before(async () => {
    userClient = await login(user);
    adminClient = await login(admin);
  });

  test("login gives a token that identifies the user", async () => {
    assert.match(userClient.credential ?? "", /\S{20,}/);
    const me = await userClient.auth.me();
    assert.equal(me.username, user[0]);
    assert.equal(me.is_admin, false);
  });

  test("a wrong password is an AuthenticationError with code not_authenticated", async () => {
    const client = new MongarsClient({ baseUrl });
    await assert.rejects(client.auth.login(`ts-nobody-${unique()}`, "not-the-password"), (error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.ok(error instanceof MongarsError);
      assert.equal(error.status, 401);
      assert.equal(error.code, "not_authenticated");
      assert.ok(error.detail.length > 0);
      return true;
    });
    assert.equal(client.credential, null);
  });

  test("no credential at all is refused with 401", async () => {
    await assert.rejects(new MongarsClient({ baseUrl }).auth.me(), AuthenticationError);
  });

  test("an unknown resource is a NotFoundError with code not_found", async () => {
    await assert.rejects(userClient.threads.get(`missing-${unique()}`), (error) => {
      assert.ok(error instanceof NotFoundError);
      assert.equal(error.status, 404);
      assert.equal(error.code, "not_found");
      return true;
    });
  });

  test("admin routes: ok for the admin, PermissionDeniedError (403) for a user", async () => {
    const users = await adminClient.admin.listUsers();
    assert.ok(users.some((u) => u.username === user[0]));
    const jobs = await adminClient.jobs.list();
    assert.ok(Array.isArray(jobs.items));
    const pointer = await adminClient.adapters.active();
    assert.ok("active" in pointer);
    const datasets = await adminClient.training.listDatasets();
    assert.ok(Array.isArray(datasets.items));
    const audit = await adminClient.admin.audit({ limit: 5 });
    assert.ok(Array.isArray(audit.items));

    for (const call of [
      () => userClient.admin.listUsers(),
      () => userClient.jobs.list(),
      () => userClient.adapters.list(),
      () => userClient.training.listRuns(),
    ]) {
      await assert.rejects(call(), (error) => {
        assert.ok(error instanceof PermissionDeniedError);
        assert.equal(error.status, 403);
        assert.equal(error.code, "forbidden");
        return true;
      });
    }
  });

  test("an API key authenticates the OpenAI-compatible routes; a revoked one does not", async () => {
    const created = await userClient.keys.create({ name: `ts-sdk-${unique()}`, use_memory: false });
    assert.match(created.key, /^mg_/);
    const keyClient = new MongarsClient({ baseUrl, apiKey: created.key });

    const models = await keyClient.openai.models();
    assert.ok(models.data.length >= 1);
    const completion = await keyClient.openai.chatCompletions({
      model: models.data[0]!.id,
      messages: [{ role: "user", content: "Say hello." }],
    });
    assert.ok((completion.choices[0]?.message.content ?? "").length > 0);

    let streamed = "";
    for await (const chunk of keyClient.openai.streamChatCompletions({
      model: models.data[0]!.id,
      messages: [{ role: "user", content: "Say hi." }],
    })) {
      streamed += chunk.choices[0]?.delta.content ?? "";
    }
    assert.ok(streamed.length > 0);

    const listed = await userClient.keys.list();
    assert.ok(listed.some((k) => k.id === created.id));
    await userClient.keys.revoke(created.id);
    await assert.rejects(keyClient.openai.models(), AuthenticationError);
  });

  test("logout revokes the token", async () => {
    const client = await login(user);
    const token = client.credential;
    await client.auth.logout();
    assert.equal(client.credential, null);
    await assert.rejects(new MongarsClient({ baseUrl, token: token! }).auth.me(), AuthenticationError);
  });

  test("too many logins for one account: RateLimitError (429) with retryAfter", async () => {
    // 5 attempts a minute per account (MONGARS_AUTH__LOGIN_LIMIT_PER_ACCOUNT): an unknown
    // account, so that no real one is locked out.
    const client = new MongarsClient({ baseUrl });
    const name = `ts-flood-${unique()}`;
    let limited: RateLimitError | undefined;
    for (let attempt = 0; attempt < 7 && !limited; attempt++) {
      try {
        await client.auth.login(name, "wrong-password");
      } catch (error) {
        if (error instanceof RateLimitError) limited = error;
        else assert.ok(error instanceof AuthenticationError);
      }
    }
    assert.ok(limited, "no 429 after 7 attempts");
    assert.equal(limited.status, 429);
    assert.equal(limited.code, "rate_limited");
    assert.ok(limited.retryAfter !== null && limited.retryAfter > 0);
  });
});
