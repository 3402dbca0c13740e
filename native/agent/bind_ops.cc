#include "bind_ops.h"

#include <sys/stat.h>

#include <string>
#include <vector>

#include "agent.h"
#include "args.h"
#include "base64.h"
#include "bind_read.h"
#include "container.h"
#include "container_ops.h"
#include "put_file.h"

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: exact in a JSON number
constexpr size_t kMaxPath = 4096;
// get_file's most bytes per answer: 4/3 of it in base64 plus a path of at most 4096 bytes (×6
// when escaped) stay well inside a reply frame (kMaxPayload, 1 MiB).
constexpr int64_t kMaxGetLength = 512 * 1024;
// list_bind's reply budget (bind_entry_reply_bytes), inside the same frame.
constexpr size_t kListBudget = 512 * 1024;

// put_file's arguments other than id and bind; `kind` and `bind_kind` decide which may appear.
bool put_args(Args& args, BindKind bind_kind, PutRequest* p) {
  std::string kind, data;
  int64_t mode = 0, uid = 0, gid = 0, offset = 0;
  bool has_mode = false, has_data = false, has_offset = false, has_target = false;
  if (!args.string("path", &p->path, true) || !args.string("kind", &kind, true)) return false;
  if (p->path.size() > kMaxPath) return args.fail("path", "longer than 4096 bytes");
  std::vector<std::string> parts;
  std::string why;
  if (!put_path_components(p->path, &parts, &why)) {
    return args.fail("path", "\"" + p->path + "\" " + why);
  }
  if (kind == "file") {
    p->kind = PutKind::kFile;
  } else if (kind == "dir") {
    p->kind = PutKind::kDir;
  } else if (kind == "symlink") {
    p->kind = PutKind::kSymlink;
  } else {
    return args.fail("kind", "expected \"file\", \"dir\" or \"symlink\", got \"" + kind + "\"");
  }
  if (bind_kind == BindKind::kFile && (!parts.empty() || p->kind != PutKind::kFile)) {
    return args.fail("path", "a file bind takes only path \"\" with kind \"file\"");
  }
  if (bind_kind == BindKind::kDir && parts.empty() && p->kind != PutKind::kDir) {
    return args.fail("kind", "path \"\" is the bind's own directory: kind must be \"dir\"");
  }
  bool file = p->kind == PutKind::kFile, symlink = p->kind == PutKind::kSymlink;
  if (!args.integer("mode", !symlink, 0, 07777, &mode, &has_mode) ||
      !args.integer("uid", true, 0, 4294967294.0, &uid) ||
      !args.integer("gid", true, 0, 4294967294.0, &gid) ||
      !args.string("data", &data, false, &has_data) ||
      !args.integer("offset", false, 0, kMaxSafeInteger, &offset, &has_offset) ||
      !args.boolean("truncate", &p->truncate) ||
      !args.string("target", &p->target, symlink, &has_target)) {
    return false;
  }
  if (!file && (has_data || has_offset || args.get("truncate"))) {
    return args.fail(has_data ? "data" : has_offset ? "offset" : "truncate", "only for kind \"file\"");
  }
  if (!symlink && has_target) return args.fail("target", "only for kind \"symlink\"");
  if (symlink && (p->target.empty() || p->target.size() > kMaxPath)) {
    return args.fail("target", "must have 1 to 4096 bytes");
  }
  if (has_data && !base64_decode(data, &p->data)) return args.fail("data", "not padded base64");
  p->mode = static_cast<mode_t>(mode);
  p->uid = static_cast<uid_t>(uid);
  p->gid = static_cast<gid_t>(gid);
  p->offset = offset;
  return true;
}

// The `bind` argument: an index of container `id`'s `count` binds.
bool bind_arg(Args& args, const std::string& id, size_t count, size_t* n) {
  int64_t v = 0;
  if (!args.integer("bind", true, 0, kMaxSafeInteger, &v)) return false;
  if (static_cast<uint64_t>(v) >= count) {
    return args.fail("bind", "container \"" + id + "\" has " + std::to_string(count) +
                                 " binds, got " + std::to_string(v));
  }
  *n = static_cast<size_t>(v);
  return true;
}

bool bind_arg(Args& args, const Container& ctr, size_t* n) {
  return bind_arg(args, ctr.id, ctr.binds.size(), n);
}

// The `path` argument of get_file, list_bind and remove_file: relative to the bind, without "..".
bool read_path_arg(Args& args, std::string* path) {
  if (!args.string("path", path, true)) return false;
  if (path->size() > kMaxPath) return args.fail("path", "longer than 4096 bytes");
  std::vector<std::string> parts;
  std::string why;
  if (!put_path_components(*path, &parts, &why)) {
    return args.fail("path", "\"" + *path + "\" " + why);
  }
  return true;
}

bool get_args(Args& args, BindKind bind_kind, GetRequest* g) {
  g->length = kMaxGetLength;
  if (!read_path_arg(args, &g->path) ||
      !args.integer("offset", false, 0, kMaxSafeInteger, &g->offset) ||
      !args.integer("length", false, 0, kMaxGetLength, &g->length)) {
    return false;
  }
  if (bind_kind == BindKind::kFile && !g->path.empty()) {
    return args.fail("path", "a file bind takes only path \"\"");
  }
  return true;
}

bool list_args(Args& args, size_t bind, BindKind bind_kind, ListRequest* l) {
  if (!read_path_arg(args, &l->path) || !args.string("after", &l->after)) return false;
  if (bind_kind == BindKind::kFile) {
    return args.fail("bind", "bind " + std::to_string(bind) + " is a file bind: read it with get_file");
  }
  return true;
}

bool remove_args(Args& args, BindKind bind_kind, std::string* path) {
  if (!read_path_arg(args, path)) return false;
  std::vector<std::string> parts;
  std::string why;
  put_path_components(*path, &parts, &why);
  if (bind_kind == BindKind::kFile || parts.empty()) {
    return args.fail("path", "must name an entry inside a directory bind (a bind itself cannot be removed)");
  }
  return true;
}

Reply bind_failed(const Container& ctr, const char* op, size_t n, const std::string& path,
                  const std::string& err) {
  return container_failed(ctr, std::string(op) + " bind " + std::to_string(n) + " (" +
                         ctr.binds[n].destination + ") \"" + path + "\": " + err);
}

Reply op_put_file(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  size_t n = 0;
  if (!bind_arg(args, *ctr, &n)) return bad_request(args);
  const BindSpec& bind = ctr->binds[n];
  PutRequest p;
  if (!put_args(args, bind.kind, &p)) return bad_request(args);
  int64_t size = 0;
  std::string err;
  if (!put_file(bind_staging_path(ctr->dir, n), bind.kind, p, &size, &err)) {
    return bind_failed(*ctr, "put_file", n, p.path, err);
  }
  json::Value r = json::Value::object();
  if (p.kind == PutKind::kFile) r.set("size", json::Value::number(static_cast<double>(size)));
  return Reply::ok(std::move(r));
}

// What get_file and list_bind say of an entry besides its name.
void describe(json::Value* r, const BindEntry& e) {
  r->set("kind", json::Value::string(bind_entry_kind(e.st.st_mode)));
  if (!S_ISLNK(e.st.st_mode)) r->set("mode", json::Value::number(e.st.st_mode & 07777));
  r->set("uid", json::Value::number(e.st.st_uid));
  r->set("gid", json::Value::number(e.st.st_gid));
  if (S_ISREG(e.st.st_mode)) r->set("size", json::Value::number(static_cast<double>(e.st.st_size)));
  if (S_ISLNK(e.st.st_mode)) {
    r->set("target", json::Value::string(e.target));
    if (!json::valid_utf8(e.target)) r->set("targetNotUtf8", json::Value::boolean(true));
  }
}

Reply op_get_file(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  size_t n = 0;
  GetRequest g;
  if (!bind_arg(args, *ctr, &n) || !get_args(args, ctr->binds[n].kind, &g)) return bad_request(args);
  const std::string& path = g.path;
  BindEntry e;
  std::string data, err;
  if (!bind_get(bind_staging_path(ctr->dir, n), ctr->binds[n].kind, path, g.offset, g.length, &e,
                &data, &err)) {
    return bind_failed(*ctr, "get_file", n, path, err);
  }
  json::Value r = json::Value::object();
  describe(&r, e);
  if (S_ISREG(e.st.st_mode)) r.set("data", json::Value::string(base64_encode(data)));
  return Reply::ok(std::move(r));
}

Reply op_list_bind(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  size_t n = 0;
  ListRequest l;
  if (!bind_arg(args, *ctr, &n) || !list_args(args, n, ctr->binds[n].kind, &l)) return bad_request(args);
  const std::string& path = l.path;
  std::vector<BindEntry> entries;
  bool more = false;
  std::string err;
  if (!bind_list(bind_staging_path(ctr->dir, n), path, l.after, kListBudget, &entries, &more,
                 &err)) {
    return bind_failed(*ctr, "list_bind", n, path, err);
  }
  json::Value list = json::Value::array();
  for (const BindEntry& e : entries) {
    json::Value item = json::Value::object();
    item.set("name", json::Value::string(e.name));
    // Such a name arrives changed (U+FFFD) in JSON: the host can tell, and skip it.
    if (!json::valid_utf8(e.name)) item.set("nameNotUtf8", json::Value::boolean(true));
    describe(&item, e);
    list.push(std::move(item));
  }
  json::Value r = json::Value::object();
  r.set("entries", std::move(list));
  r.set("more", json::Value::boolean(more));
  return Reply::ok(std::move(r));
}

Reply op_remove_file(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  size_t n = 0;
  std::string path;
  if (!bind_arg(args, *ctr, &n) || !remove_args(args, ctr->binds[n].kind, &path)) return bad_request(args);
  bool removed = false;
  std::string err;
  if (!bind_remove(bind_staging_path(ctr->dir, n), path, &removed, &err)) {
    return bind_failed(*ctr, "remove_file", n, path, err);
  }
  json::Value r = json::Value::object();
  r.set("removed", json::Value::boolean(removed));
  return Reply::ok(std::move(r));
}

}  // namespace

bool put_file_args(Args& args, BindKind bind_kind, PutRequest* p) { return put_args(args, bind_kind, p); }
bool bind_index_arg(Args& args, const std::string& id, size_t count, size_t* n) {
  return bind_arg(args, id, count, n);
}
bool get_file_args(Args& args, BindKind bind_kind, GetRequest* g) { return get_args(args, bind_kind, g); }
bool list_bind_args(Args& args, size_t bind, BindKind bind_kind, ListRequest* l) {
  return list_args(args, bind, bind_kind, l);
}
bool remove_file_args(Args& args, BindKind bind_kind, std::string* path) {
  return remove_args(args, bind_kind, path);
}

const std::vector<Op> kBindOps = {
    {"remove_file", op_remove_file},
    {"put_file", op_put_file},
    {"get_file", op_get_file},
    {"list_bind", op_list_bind},
};
