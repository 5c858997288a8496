/** Resource figures a run records in its report (report.run). */

/** Peak resident memory of this process so far, in MB (the OS's maxRSS: what the process cost at its worst). */
export function peakRssMB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
