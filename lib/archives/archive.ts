/**
 * Where archive-mode sessions live: a store of *domains* (one per session id)
 * holding *keys*, each a string. The plugin keeps a session under one key,
 * `session`, whose value is the session's JSON text.
 *
 * Anything that implements the six methods can be passed as the `archive`
 * option; `fastify-sessions/testing` holds the conformance suite that every
 * archive in this package passes, for checking your own.
 *
 * Rules every archive keeps:
 * - `domain` and `key` are opaque strings chosen by the plugin: a session id
 *   (URL-safe base64, validated before it gets here) and a short key name.
 * - A value is stored and returned exactly as given.
 * - `ttlMs`, when given, is how long the key lives from this `set`; a key past
 *   its time is never returned again (`get` gives `undefined`, `has` false).
 * - A domain exists while it holds at least one key.
 * - Errors are thrown (rejected), never swallowed: the plugin answers 503 with
 *   `FST_SESSION_ARCHIVE_*` and sends no cookie for state that was not stored.
 *
 * Limits, kept by the built-in archives (an archive of your own may keep them
 * the same way, or none):
 * - A domain is *new* from the `set` or `compareAndSet` that creates it until
 *   a `get` finds it: the plugin reads a session only when its browser sends
 *   the id back, so a found domain is one whose browser came back. It is then
 *   *established*.
 * - New domains have a quota of their own (`maxNewSessions`); creating one
 *   beyond it, or beyond `maxSessions` in all, first removes the oldest new
 *   domain. An established domain is never removed to make room.
 * - When every stored domain is established and there are `maxSessions` of
 *   them, creating a domain rejects with `FST_SESSION_ARCHIVE_AT_CAPACITY`;
 *   writes to existing domains still succeed.
 */
export interface Archive {
  get (domain: string, key: string): Promise<string | undefined>
  set (domain: string, key: string, value: string, ttlMs?: number): Promise<void>
  has (domain: string, key: string): Promise<boolean>
  remove (domain: string, key: string): Promise<void>
  hasDomain (domain: string): Promise<boolean>
  removeDomain (domain: string): Promise<void>
  /**
   * Optional: atomically sets `key` to `value` only if it currently holds
   * `expected` (`undefined`: only if it does not exist), refreshing the ttl as
   * `set` does; resolves whether it did. An archive shared by several processes
   * implements it: the plugin then merges concurrent saves of one session
   * across processes, not only within one.
   */
  compareAndSet?(domain: string, key: string, expected: string | undefined, value: string, ttlMs?: number): Promise<boolean>
  /** Optional: awaited at registration; rejects when the archive cannot be reached, so a bad set-up fails `app.ready()`. */
  ready?(): Promise<void>
  /** Optional: called once by `app.close()`; an archive closes only what it created. */
  close?(): Promise<void>
}
