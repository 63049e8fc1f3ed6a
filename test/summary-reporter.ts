/**
 * Prints one plain closing line, "tests: N passed, N failed, N skipped", that any CI log
 * reader understands, after vitest's own summary.
 */
import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

export default class SummaryReporter implements Reporter {
  onFinished(files: TaskLike[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: TaskLike): void => {
      if (t.type === 'test') {
        if (t.mode === 'skip' || t.mode === 'todo') skipped++;
        else if (t.result?.state === 'pass') passed++;
        else failed++;
      }
      t.tasks?.forEach(walk);
    };
    files.forEach(walk);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
