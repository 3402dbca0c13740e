#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
// Let stdout drain before leaving: piped output would otherwise be cut short.
process.stdout.write('', () => process.exit(code));
