// Progress lines for long steps, shown only when a person is watching (stderr is a terminal).
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): ((message: string) => void) | undefined {
  if (!stream.isTTY) return undefined;
  const started = Date.now();
  return (message) => {
    stream.write(`\x1b[2m[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\x1b[0m\n`);
  };
}
