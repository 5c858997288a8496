/** Ctrl-C for long commands: the first one aborts (the command keeps what it can), a second one quits at once. */
export function abortOnInterrupt(message: string): AbortController {
  const controller = new AbortController();
  let interrupted = 0;
  process.on('SIGINT', () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write(`\n${message}; press Ctrl-C again to quit now\n`);
    controller.abort();
  });
  return controller;
}
