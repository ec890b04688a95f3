/**
 * Live-server settings for the tests: MONGARS_URL, MONGARS_ADMIN and MONGARS_USER
 * (`name:password`), as tests/sdk/test_typescript_sdk.py sets them.
 */
import { MongarsClient, RateLimitError } from "../src/index.js";

export const baseUrl = process.env.MONGARS_URL ?? "";
/** Why the live tests cannot run, or undefined when they can (node:test's `skip` option). */
export const skip = baseUrl ? undefined : "MONGARS_URL is not set (no live server)";

function account(name: string): [string, string] {
  const value = process.env[name] ?? "";
  const cut = value.indexOf(":");
  return [value.slice(0, cut), value.slice(cut + 1)];
}

export const admin = account("MONGARS_ADMIN");
export const user = account("MONGARS_USER");

/**
 * Log in, waiting out a 429: logins are limited per address (20/minute) and every SDK
 * test on this machine logs in from 127.0.0.1.
 */
export async function login([username, password]: [string, string]): Promise<MongarsClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await MongarsClient.login(baseUrl, username, password);
    } catch (error) {
      if (!(error instanceof RateLimitError) || attempt >= 2) throw error;
      await new Promise((r) => setTimeout(r, ((error.retryAfter ?? 5) + 0.5) * 1000));
    }
  }
}

/** A unique suffix, so reruns against one server do not collide. */
export const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
