#!/usr/bin/env node
// `@rustydb/client`'s `rustydb` command (shell, query, watch, gen; the server's commands when
// @rustydb/server is installed too): runs the compiled JavaScript in dist/.
import '../dist/cli/main.js';
