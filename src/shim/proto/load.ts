/**
 * Parses .proto files into one protobufjs Root, following their imports through a list of include
 * directories. protobufjs's own loader is not used because it swaps any import of
 * "google/protobuf/*.proto" for definitions bundled in protobufjs; here every schema comes from a
 * file we name, so the shim runs on ours (proto/) and the wire-compatibility test on containerd's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';

export class ProtoLoadError extends Error {
  readonly code = 'PROTO_LOAD';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtoLoadError';
  }
}

/**
 * Loads `files` (absolute, or relative to an include directory) and what they import. Weak imports
 * are not followed: they only declare custom options (gogoproto's, containerd's fieldpath), which
 * protobufjs keeps as plain option names without needing their definitions. Field names become
 * lowerCamelCase (`exec_id` → `execId`), as protobufjs does by default.
 */
export function loadProtoFiles(files: readonly string[], includeDirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  const seen = new Set<string>();
  const visit = (path: string, importedBy: string | null): void => {
    const file = locate(path, includeDirs, importedBy);
    if (seen.has(file)) return;
    seen.add(file);
    let parsed: protobuf.IParserResult;
    try {
      parsed = protobuf.parse(readFileSync(file, 'utf8'), root, { keepCase: false });
    } catch (err) {
      throw new ProtoLoadError(`cannot parse ${file}: ${(err as Error).message}`, { cause: err });
    }
    for (const imported of parsed.imports ?? []) visit(imported, file);
  };
  for (const file of files) visit(file, null);
  try {
    root.resolveAll();
  } catch (err) {
    throw new ProtoLoadError(`unresolved type in ${[...seen].join(', ')}: ${(err as Error).message}`, { cause: err });
  }
  return root;
}

function locate(path: string, includeDirs: readonly string[], importedBy: string | null): string {
  if (isAbsolute(path)) {
    if (existsSync(path)) return path;
  } else {
    for (const dir of includeDirs) {
      const candidate = join(dir, path);
      if (existsSync(candidate)) return candidate;
    }
  }
  const from = importedBy ? ` (imported by ${importedBy})` : '';
  throw new ProtoLoadError(`cannot find ${path}${from} in ${includeDirs.join(', ') || 'no include directory'}`);
}
