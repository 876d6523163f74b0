/**
 * The search behind the DHCP rows: the highest offered rate at which a server drops at most
 * MAX_DROP_PERCENT of exchanges (ISC's criterion for Kea's published figures). Offered rates double
 * from `start` until a probe fails (or `max` is reached), then the gap between the highest pass and
 * the lowest failure is bisected until it is within `resolution` of the failure, or the time budget
 * is spent. If perfdhcp itself cannot send the offered rate, the search stops there and says so.
 */
export const MAX_DROP_PERCENT = 2.5;

export interface Probe {
  readonly offered: number;
  /** What perfdhcp managed to send (DISCOVERs/s); below `offered` when the client is the limit. */
  readonly sentPerSecond: number;
  readonly acksPerSecond: number;
  readonly dropPercent: number;
}

export interface Ceiling {
  /** Highest offered rate that passed (0 if none did). */
  readonly rate: number;
  /** ACK/s at that rate. */
  readonly acksPerSecond: number;
  /** Lowest offered rate that failed, if one was probed. */
  readonly firstFailure?: number;
  /** perfdhcp could not offer more than this: the server's ceiling is at least `rate`. */
  readonly clientLimited: boolean;
  /** The search ran out of time before the resolution was reached. */
  readonly budgetSpent: boolean;
  readonly probes: readonly Probe[];
}

export async function searchCeiling(
  probe: (rate: number) => Promise<Probe>,
  options: { budgetMs: number; start?: number; max?: number; resolution?: number; floor?: number },
): Promise<Ceiling> {
  const start = options.start ?? 1000;
  const max = options.max ?? 64_000;
  const resolution = options.resolution ?? 0.1;
  const floor = options.floor ?? 100;
  const deadline = Date.now() + options.budgetMs;
  const probes: Probe[] = [];
  let pass: Probe | undefined;
  let fail: number | undefined;
  let clientLimited = false;
  let budgetSpent = false;
  for (;;) {
    let rate: number;
    if (fail === undefined) rate = pass ? pass.offered * 2 : start;
    else if (!pass) rate = Math.round(fail / 2);
    else {
      if ((fail - pass.offered) / fail <= resolution) break;
      rate = Math.round((pass.offered + fail) / 2);
    }
    if (rate > max || rate < floor) break;
    if (Date.now() >= deadline) {
      budgetSpent = true;
      break;
    }
    const result = await probe(rate);
    probes.push(result);
    if (result.dropPercent <= MAX_DROP_PERCENT) {
      pass = result;
      // perfdhcp fell short of the offered rate: higher offers would not be offered either.
      if (result.sentPerSecond < 0.9 * rate) {
        clientLimited = true;
        break;
      }
    } else fail = rate;
  }
  return {
    rate: pass?.offered ?? 0,
    acksPerSecond: pass?.acksPerSecond ?? 0,
    ...(fail !== undefined ? { firstFailure: fail } : {}),
    clientLimited,
    budgetSpent,
    probes,
  };
}
