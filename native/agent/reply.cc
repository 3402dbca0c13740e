#include "reply.h"

#include "channel.h"
#include "protocol.h"

Reply Reply::ok(json::Value result) {
  Reply r;
  r.result = std::move(result);
  return r;
}

Reply Reply::error(std::string code, std::string message) {
  Reply r;
  r.kind = Kind::kError;
  r.code = std::move(code);
  r.message = std::move(message);
  return r;
}

Reply Reply::deferred() {
  Reply r;
  r.kind = Kind::kDeferred;
  return r;
}

void reply_send(Connection& c, uint32_t request, const Reply& r) {
  if (r.kind != Reply::Kind::kDeferred) {
    std::string payload = r.kind == Reply::Kind::kOk ? proto::ok_payload(r.result)
                                                      : proto::error_payload(r.code, r.message);
    conn_send(c, proto::kResponse, request, payload.data(), payload.size());
  }
  if (r.after_sent) r.after_sent();
}

void reply_send(Agent& a, const ReplyTo& to, const Reply& r) {
  if (Connection* c = conn_find(a, to.conn)) reply_send(*c, to.request, r);
}
