/**
 * SIGHUP between the process's start and the moment the agent takes over its
 * signals (run.ts) is remembered instead of ending the process.
 */
let hupSeen = false;
const onHup = () => {
  hupSeen = true;
};

export function holdEarlySignals(): void {
  process.on('SIGHUP', onHup);
}

/** Hands over: whether a SIGHUP came meanwhile; the early handler goes. */
export function takeEarlySighup(): boolean {
  process.off('SIGHUP', onHup);
  const seen = hupSeen;
  hupSeen = false;
  return seen;
}
