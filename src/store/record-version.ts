// Parsing a record file: unreadable JSON is STATE_CORRUPT naming the file and the parse error; a
// record from a newer virtcontainers is STATE_UNSUPPORTED, refused rather than misread.
import { VcError } from '../errors.js';
import { RECORD_VERSION } from '../model/records.js';

export function checkRecord<T extends { version: number }>(text: string, path: string, what: string, check: (record: T) => void): T {
  let record: T;
  try {
    record = JSON.parse(text) as T;
    if (typeof record !== 'object' || record === null) throw new Error('it is not a JSON object');
    if (!Number.isInteger(record.version) || record.version < 1) throw new Error(`its version is ${JSON.stringify(record.version)}`);
  } catch (err) {
    throw new VcError('STATE_CORRUPT', `state of ${what} (${path}) is unreadable: ${(err as Error).message}`, { cause: err });
  }
  if (record.version > RECORD_VERSION) {
    throw new VcError(
      'STATE_UNSUPPORTED',
      `state of ${what} (${path}) was written by a newer virtcontainers (record version ${record.version}; this one reads up to ${RECORD_VERSION}): use that version, or delete the pod with force`,
    );
  }
  try {
    check(record);
  } catch (err) {
    throw new VcError('STATE_CORRUPT', `state of ${what} (${path}) is unreadable: ${(err as Error).message}`, { cause: err });
  }
  return record;
}
