/**
 * Measures one group of one case, in a process of its own (see suite.ts). Started as
 *
 *   node --import tsx bench/group-child.ts <case> <group id> <settings as JSON>
 *
 * and prints the group's {@link Measurement} as one JSON line on stdout; progress goes to
 * stderr.
 */
import { measure } from "./harness.js";
import { groupSeed, loadCase, type ChildSettings } from "./suite.js";

const [caseName, id, settingsArgument] = process.argv.slice(2);
if (caseName === undefined || id === undefined || settingsArgument === undefined) {
  throw new Error("usage: group-child.ts <case> <group id> <settings as JSON>");
}
const settings = JSON.parse(settingsArgument) as ChildSettings;
const group = (await loadCase(caseName)).groups(settings).find((entry) => entry.id === id);
if (group === undefined) throw new Error(`case ${caseName} has no group ${id}`);
const contenders = await group.contenders();
const started = performance.now();
const measurement = await measure(contenders, {
  ...group.options,
  seed: groupSeed(settings, caseName, id),
  clock: settings.clock,
  onRound: (round) => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stderr.write(
      `round ${String(round + 1)}/${String(group.options.rounds)} (${seconds} s)\n`,
    );
  },
});
// Exit once the line is out: a group's contenders may hold connections open (the BullMQ case
// keeps Redis clients and worker processes), which would keep this process alive.
process.stdout.write(`${JSON.stringify(measurement)}\n`, () => process.exit(0));
