/**
 * The pool's side of a team (src/engine/sampleShare.ts): workers that run the same analysis, each on its share of
 * every layer's noise samples. Each member sends its partial sums of a round as a 'reduce' message; once every
 * member's are in, the sum (taken in member order, so the same bits whoever asks) goes back to all of them.
 */
import { readReport, writeReport } from '../engine/reportFile';
import { sumInOrder } from '../engine/sampleShare';
import { decodeFloats, encodeFloats } from '../protocol';

export class TeamReducer {
  private readonly rounds = new Map<number, (Float64Array | undefined)[]>();

  /** `answer(member, round, values)` sends a member the round's sum (encoded). */
  constructor(
    readonly members: number,
    private readonly answer: (member: number, round: number, values: string) => void,
  ) {}

  /** Member `member`'s partial sums for `round`; answers everyone when it is the round's last. */
  contribute(member: number, round: number, values: string): void {
    if (!Number.isInteger(member) || member < 0 || member >= this.members) throw new Error(`team: no member ${member} in a team of ${this.members}`);
    let parts = this.rounds.get(round);
    if (!parts) this.rounds.set(round, (parts = new Array(this.members).fill(undefined)));
    if (parts[member]) throw new Error(`team: member ${member} sent round ${round} twice`);
    parts[member] = decodeFloats(values);
    if (parts.some((p) => !p)) return;
    this.rounds.delete(round);
    const sum = encodeFloats(sumInOrder(parts as Float64Array[]));
    for (let m = 0; m < this.members; m++) this.answer(m, round, sum);
  }
}

/** Where a team member (not the leader, member 0) writes its copy of the report: beside the leader's, removed after. */
export function memberReportPath(reportPath: string, member: number): string {
  return member === 0 ? reportPath : `${reportPath}.member${member}`;
}

/**
 * The leader's report gains the other members' processes (pid, peak memory, backend), so the report says what the
 * whole team used; best effort, the result is the leader's either way.
 */
export function addMemberProcesses(reportPath: string, members: number): void {
  try {
    const leader = readReport(reportPath);
    if (!leader.run) return;
    const known = new Set(leader.run.processes.map((p) => p.pid));
    for (let member = 1; member < members; member++) {
      for (const p of readReport(memberReportPath(reportPath, member)).run?.processes ?? []) {
        if (!known.has(p.pid)) leader.run.processes.push(p);
        known.add(p.pid);
      }
    }
    writeReport(reportPath, leader);
  } catch {
    // A member's copy is missing or unreadable: the leader's report stands as it is.
  }
}
