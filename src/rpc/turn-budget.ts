/**
 * How long the serving thread may start new calls in one event-loop turn before it lets the
 * loop go round (timers, other sockets, replies from the engine thread).
 *
 * With every client keeping calls in flight, each poll of the loop finds all connections
 * readable; running every call they sent in that one poll made a turn last as long as all calls
 * in flight together (256 getattrs: ~3 ms at p50, and every timer of the process that much late).
 * Past the budget, a connection keeps what it read as waiting calls and stops reading; the
 * calls run in a later turn, after the loop has looked at its timers.
 */
export const DEFAULT_TURN_BUDGET_MS = 1;

export class TurnBudget {
  /** performance.now() at the first call of the current turn, -1 between turns. */
  private turnStartMs = -1;
  private readonly endTurn = (): void => {
    this.turnStartMs = -1;
  };

  constructor(readonly budgetMs: number = DEFAULT_TURN_BUDGET_MS) {}

  /**
   * True while this turn may start more work. The first ask of a turn opens it; it ends in the
   * loop's check phase (setImmediate), so the waiting work resumed there (`resumeLater`) gets a
   * turn of its own.
   */
  hasRoom(): boolean {
    const nowMs = performance.now();
    if (this.turnStartMs < 0) {
      this.turnStartMs = nowMs;
      setImmediate(this.endTurn);
      return true;
    }
    return nowMs - this.turnStartMs < this.budgetMs;
  }

  /**
   * Runs `resume` in the loop's check phase: after this poll's callbacks, and (when asked from
   * the check phase itself) after the next turn's timers and poll. Immediates run one at a time
   * with their microtasks in between, so each resumed connection sees the time the ones before
   * it took.
   */
  resumeLater(resume: () => void): void {
    setImmediate(resume);
  }
}
