/**
 * KVMFLEET_TEST_FAIL_AT=NAME makes the test that reaches failpoint(NAME) fail there, half-way,
 * with its guests, servers and namespaces up: a check that a failing run still cleans up after
 * itself (scripts/test.sh then fails the run if anything is left running). Names in use:
 * vms:clones-running, boot:guests-booting, console:job-running.
 */
export function failpoint(name: string): void {
  if (process.env.KVMFLEET_TEST_FAIL_AT === name)
    throw new Error(`failing on purpose at ${name} (KVMFLEET_TEST_FAIL_AT)`);
}
