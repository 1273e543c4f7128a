// What a function builds once per container (clients' secrets, the pager): made on the first invocation that needs
// it and kept for the next ones; a failed cold start (a secret unreadable for a moment) is tried again on the next
// invocation instead of failing every invocation of that container.
export function coldStart<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () =>
    (made ??= make().catch((err: unknown) => {
      made = undefined;
      throw err;
    }));
}
