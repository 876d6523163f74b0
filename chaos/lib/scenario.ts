/** What a chaos scenario is and what it reports: one line of figures, what was lost, what else went wrong. */
export interface ScenarioResult {
  /** One line of measured figures ("acks 412, built 150/150, restart 2.1 s"). */
  readonly figures: string;
  /** Work the fault lost: ACKed leases or finished builds missing afterwards, VMs missing or made twice. */
  readonly lost: number;
  /** Other broken promises (a process that died unexpectedly, a 500 where a 503 was due, a bound exceeded). */
  readonly failures: readonly string[];
}

export interface Scenario {
  readonly name: string;
  /** The fault, in a few words. */
  readonly fault: string;
  run(): Promise<ScenarioResult>;
}

/** Problems found when a check fails, collected instead of thrown so every figure is still reported. */
export class Findings {
  readonly failures: string[] = [];
  check(ok: boolean, problem: string): boolean {
    if (!ok) this.failures.push(problem);
    return ok;
  }
}
