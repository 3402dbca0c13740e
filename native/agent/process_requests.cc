#include "process_requests.h"

#include <signal.h>

#include "args.h"

bool exec_args(Args& args, ExecSpec* spec) {
  int64_t rows = 0, cols = 0;
  bool has_rows = false, has_cols = false;
  if (!args.string_array("argv", true, &spec->argv) ||
      !args.string_array("env", false, &spec->env) || !args.string("cwd", &spec->cwd) ||
      !args.boolean("tty", &spec->tty) ||
      !args.integer("rows", false, 0, 65535, &rows, &has_rows) ||
      !args.integer("cols", false, 0, 65535, &cols, &has_cols) || !check_env(args, spec->env)) {
    return false;
  }
  if (spec->argv.empty()) return args.fail("argv", "must not be empty");
  if (spec->cwd.empty()) return args.fail("cwd", "must not be empty");
  if (spec->tty && (has_rows || has_cols)) {
    spec->has_size = true;
    spec->rows = static_cast<unsigned short>(rows);
    spec->cols = static_cast<unsigned short>(cols);
  }
  return true;
}

// The signal is checked before the process, as the ops always have: a bad signal is BAD_REQUEST
// whether or not the process exists.
bool signal_args(Args& args, SignalRequest* out) {
  int64_t sig = 0;
  if (!args.integer("signal", true, 0, SIGRTMAX, &sig) || !args.process_id(&out->process)) return false;
  out->signal = static_cast<int>(sig);
  return true;
}

bool resize_args(Args& args, ResizeRequest* out) {
  int64_t rows = 0, cols = 0;
  if (!args.integer("rows", true, 0, 65535, &rows) || !args.integer("cols", true, 0, 65535, &cols) ||
      !args.process_id(&out->process)) {
    return false;
  }
  out->rows = static_cast<unsigned short>(rows);
  out->cols = static_cast<unsigned short>(cols);
  return true;
}
