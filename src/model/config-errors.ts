// Turns zod issues into one message that names every bad field and the value it got.
import type { z } from 'zod';

export function describeInput(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string {
  return issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    const field = path.length ? path.map(String).join('.') : 'config';
    const got = 'input' in issue ? `, got ${describe(issue.input)}` : '';
    return `${field}: ${issue.message}${got}`;
  }).join('; ');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const text = JSON.stringify(value);
    return text && text.length > 80 ? `${text.slice(0, 77)}...` : String(text);
  } catch {
    return String(value);
  }
}
