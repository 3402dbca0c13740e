// The bind ops (docs/agent-protocol.md, "Binds"): put_file writes into a bind's staging area,
// get_file and list_bind read it back, remove_file takes an entry out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kBindOps;

class Args;
enum class BindKind;
struct PutRequest;
// put_file's arguments other than id and bind, for a bind of kind bind_kind: false with the
// BAD_REQUEST reason in args. Apart for the request fuzzer (native/agent/fuzz).
bool put_file_args(Args& args, BindKind bind_kind, PutRequest* p);

// The `bind` argument: an index below `count`, the binds of container `id` (named in the reason).
bool bind_index_arg(Args& args, const std::string& id, size_t count, size_t* n);

struct GetRequest {
  std::string path;     // relative, no ".."; "" (the bind itself) for a file bind
  int64_t offset = 0;   // 0 to 2^53 - 1
  int64_t length = 0;   // 0 to 512 KiB (the default get_file_args sets): what fits in a reply
};
struct ListRequest {
  std::string path;   // relative, no ".."
  std::string after;  // the last name of the previous page; "" = from the start
};
// get_file's, list_bind's and remove_file's arguments other than id and bind, for bind `bind` of
// kind bind_kind: false with the BAD_REQUEST reason in args. Apart, like put_file_args, so the
// request fuzzer reaches them without a container.
bool get_file_args(Args& args, BindKind bind_kind, GetRequest* g);
bool list_bind_args(Args& args, size_t bind, BindKind bind_kind, ListRequest* l);
// remove_file: `path` names an entry inside a directory bind (not "").
bool remove_file_args(Args& args, BindKind bind_kind, std::string* path);
