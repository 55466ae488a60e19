/**
 * The verdict on one performance target, shared by bench/run.ts and bench/idle.ts: met; missed, but by no more than
 * the noise (the spread of repeated runs on the machine: not a failure); or missed beyond it (the run fails).
 */

/** A target's outcome, as printed at the end of its line. */
export type Outcome = 'met' | 'missed (within noise)' | 'missed';

/**
 * The outcome of `measured` against `limit`: `better` 'lower' for "at most", 'higher' for "at least"; `noise` relative
 * (0.15: a miss by up to 15% of the limit is within noise). A value that is not a number never passes for within.
 */
export function verdict(measured: number, limit: number, better: 'lower' | 'higher', noise: number): Outcome {
  if (better === 'lower' ? measured <= limit : measured >= limit) return 'met';
  const within = better === 'lower' ? measured <= limit * (1 + noise) : measured >= limit * (1 - noise);
  return within ? 'missed (within noise)' : 'missed';
}
