/** Waiting for a condition, never for a fixed time: poll with a deadline. */

/** Polls `check` until it is true, every 50 ms, failing after `ms` with `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
