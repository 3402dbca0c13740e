#include "network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "agent.h"
#include "args.h"
#include "log.h"
#include "netlink.h"

namespace {

constexpr double kU32Max = 4294967295.0;
// The files this op writes, in the order they are written and bound; all under <run>/net/.
const char* const kFiles[] = {"resolv.conf", "hosts", "hostname"};

struct Cidr {
  NlAddr addr;
  unsigned prefix = 0;
  std::string text;
};

struct Interface {
  std::string mac;  // lower case
  std::string name;  // "" = keep
  int64_t mtu = 0;   // 0 = keep
  bool up = true;
  std::vector<Cidr> addresses;
};

struct Route {
  Cidr dest;
  bool has_gateway = false;
  NlAddr gateway;
  std::string gateway_text;
  std::string iface;  // name or MAC (lower case); "" = none
  int64_t metric = 0;
  bool has_metric = false;
  std::string what;  // "route 10.0.0.0/8 via 10.1.2.1 dev eth0", for errors
};

struct HostEntry {
  std::string ip;
  std::vector<std::string> names;
};

struct NetConfig {
  std::vector<Interface> interfaces;
  std::vector<Route> routes;
  bool has_dns = false;
  std::vector<std::string> nameservers, search, options;
  bool has_hosts = false;
  std::vector<HostEntry> hosts;
  bool has_hostname = false;
  std::string hostname;
};

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

bool parse_ip(const std::string& s, NlAddr* out) {
  if (inet_pton(AF_INET, s.c_str(), out->bytes) == 1) {
    out->family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out->bytes) == 1) {
    out->family = AF_INET6;
    return true;
  }
  return false;
}

// "10.1.2.3/24", "fd00::3/64".
bool parse_cidr(const std::string& s, Cidr* out) {
  size_t slash = s.find('/');
  if (slash == std::string::npos || slash + 1 >= s.size() || s.size() - slash > 4) return false;
  unsigned prefix = 0;
  for (size_t i = slash + 1; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    prefix = prefix * 10 + static_cast<unsigned>(s[i] - '0');
  }
  if (s[slash + 1] == '0' && s.size() - slash > 2) return false;  // no leading zeros
  if (!parse_ip(s.substr(0, slash), &out->addr)) return false;
  if (prefix > out->addr.size() * 8) return false;
  out->prefix = prefix;
  out->text = s;
  return true;
}

bool host_bits_clear(const Cidr& c) {
  for (unsigned bit = c.prefix; bit < c.addr.size() * 8; bit++) {
    if (c.addr.bytes[bit / 8] & (0x80u >> (bit % 8))) return false;
  }
  return true;
}

bool is_mac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < 17; i++) {
    if (i % 3 == 2) {
      if (s[i] != ':') return false;
    } else if (!isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Interface names as the kernel accepts them (dev_valid_name), narrowed to a portable set.
bool valid_ifname(const std::string& s) {
  if (s.empty() || s.size() >= IFNAMSIZ || s == "." || s == "..") return false;
  for (char ch : s) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

// A word of resolv.conf or hosts: printable ASCII, no whitespace or comment characters.
bool valid_word(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char ch : s) {
    if (ch <= ' ' || ch > '~' || ch == '#' || ch == ';') return false;
  }
  return true;
}


// The array argument n of args (absent = empty), each item an object checked by item().
template <typename F>
bool each_object(Args& args, const char* n, F item) {
  const json::Value* v = args.get(n);
  if (!v) return true;
  if (!v->is_array()) return args.fail(n, "expected an array of objects, got " + Args::got(*v));
  for (size_t i = 0; i < v->items().size(); i++) {
    std::string at = args.name(n) + "[" + std::to_string(i) + "]";
    const json::Value& obj = v->items()[i];
    if (!obj.is_object()) {
      return args.fail((std::string(n) + "[" + std::to_string(i) + "]").c_str(), "expected an object, got " + Args::got(obj));
    }
    Args sub(obj, at + ".");
    if (!item(sub, i)) return args.take(sub);
  }
  return true;
}

bool parse_interface(Args& x, Interface* out) {
  bool has_name = false;
  if (!x.string("mac", &out->mac, true)) return false;
  if (!is_mac(out->mac)) return x.fail("mac", quoted(out->mac) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
  out->mac = lower(out->mac);
  if (!x.string("name", &out->name, false, &has_name)) return false;
  if (has_name && !valid_ifname(out->name)) {
    return x.fail("name", quoted(out->name) + " is not an interface name (1-15 of [a-zA-Z0-9_.-])");
  }
  if (!x.integer("mtu", false, 68, 65535, &out->mtu) || !x.boolean("up", &out->up)) return false;
  std::vector<std::string> addrs;
  if (!x.string_array("addresses", false, &addrs)) return false;
  for (size_t i = 0; i < addrs.size(); i++) {
    Cidr c;
    std::string at = "addresses[" + std::to_string(i) + "]";
    if (!parse_cidr(addrs[i], &c)) {
      return x.fail(at.c_str(), quoted(addrs[i]) + " is not an address with a prefix length (10.1.2.3/24, fd00::3/64)");
    }
    out->addresses.push_back(c);
  }
  return true;
}

bool parse_route(Args& x, Route* out) {
  std::string dest, gw;
  if (!x.string("dest", &dest, true)) return false;
  if (dest == "default") dest = "0.0.0.0/0";
  if (!parse_cidr(dest, &out->dest)) {
    return x.fail("dest", quoted(dest) + " is not a destination (\"default\" or a CIDR such as 10.0.0.0/8)");
  }
  if (!host_bits_clear(out->dest)) {
    return x.fail("dest", quoted(dest) + " has host bits set past the prefix length");
  }
  if (!x.string("gateway", &gw, false, &out->has_gateway)) return false;
  if (out->has_gateway) {
    if (!parse_ip(gw, &out->gateway)) return x.fail("gateway", quoted(gw) + " is not an IP address");
    if (out->gateway.family != out->dest.addr.family) {
      // "default"/"0.0.0.0/0" with an IPv6 gateway: the IPv6 default route.
      if (dest == "0.0.0.0/0" && out->gateway.family == AF_INET6) {
        parse_cidr("::/0", &out->dest);
      } else {
        return x.fail("gateway", quoted(gw) + " is not of the family of dest " + quoted(dest));
      }
    }
    out->gateway_text = gw;
  }
  bool has_iface = false;
  if (!x.string("interface", &out->iface, false, &has_iface)) return false;
  if (has_iface) {
    if (is_mac(out->iface)) {
      out->iface = lower(out->iface);
    } else if (!valid_ifname(out->iface)) {
      return x.fail("interface", quoted(out->iface) + " is neither an interface name nor a MAC address");
    }
  }
  if (!out->has_gateway && !has_iface) {
    return x.fail("interface", "missing: a route without a gateway needs an interface");
  }
  if (!x.integer("metric", false, 0, kU32Max, &out->metric, &out->has_metric)) return false;
  out->what = "route " + out->dest.text;
  if (out->has_gateway) out->what += " via " + gw;
  if (has_iface) out->what += " dev " + out->iface;
  return true;
}

bool parse_words(Args& x, const char* n, size_t max, std::vector<std::string>* out, bool ip) {
  if (!x.string_array(n, false, out)) return false;
  for (size_t i = 0; i < out->size(); i++) {
    const std::string& w = (*out)[i];
    std::string at = std::string(n) + "[" + std::to_string(i) + "]";
    NlAddr unused;
    if (ip ? !parse_ip(w, &unused) : !valid_word(w, max)) {
      return x.fail(at.c_str(), quoted(w) + (ip ? " is not an IP address" : " is not a single word of printable characters"));
    }
  }
  return true;
}

bool parse_config(Args& args, NetConfig* cfg) {
  bool ok = each_object(args, "interfaces", [&](Args& x, size_t) {
    Interface itf;
    if (!parse_interface(x, &itf)) return false;
    for (const Interface& other : cfg->interfaces) {
      if (other.mac == itf.mac) return x.fail("mac", quoted(itf.mac) + " is listed twice");
      if (!itf.name.empty() && other.name == itf.name) return x.fail("name", quoted(itf.name) + " is listed twice");
    }
    cfg->interfaces.push_back(std::move(itf));
    return true;
  });
  ok = ok && each_object(args, "routes", [&](Args& x, size_t) {
    Route r;
    if (!parse_route(x, &r)) return false;
    cfg->routes.push_back(std::move(r));
    return true;
  });
  if (!ok) return false;
  const json::Value* dns = nullptr;
  if (!args.object("dns", &dns)) return false;
  if (dns) {
    cfg->has_dns = true;
    Args d(*dns, "dns.");
    if (!parse_words(d, "nameservers", 0, &cfg->nameservers, true) ||
        !parse_words(d, "search", 253, &cfg->search, false) ||
        !parse_words(d, "options", 64, &cfg->options, false)) {
      return args.take(d);
    }
  }
  cfg->has_hosts = args.get("hosts") != nullptr;
  ok = each_object(args, "hosts", [&](Args& x, size_t) {
    HostEntry h;
    NlAddr unused;
    if (!x.string("ip", &h.ip, true)) return false;
    if (!parse_ip(h.ip, &unused)) return x.fail("ip", quoted(h.ip) + " is not an IP address");
    if (!parse_words(x, "names", 253, &h.names, false)) return false;
    if (h.names.empty()) return x.fail("names", "must not be empty");
    cfg->hosts.push_back(std::move(h));
    return true;
  });
  if (!ok) return false;
  if (!args.string("hostname", &cfg->hostname, false, &cfg->has_hostname)) return false;
  if (cfg->has_hostname && !valid_hostname(cfg->hostname)) {
    return args.fail("hostname", quoted(cfg->hostname) + " is not a host name (1-64 of [a-zA-Z0-9.-], starting with a letter or digit)");
  }
  return true;
}

// --- applying ------------------------------------------------------------------------------------

Reply net_failed(const std::string& what, int err) {
  return Reply::error("NETWORK_FAILED", what + ": " + strerror(err));
}

const NlLink* find_link(const std::vector<NlLink>& links, const std::string& name_or_mac) {
  bool mac = is_mac(name_or_mac);
  for (const NlLink& l : links) {
    if (mac ? l.mac == name_or_mac : l.name == name_or_mac) return &l;
  }
  return nullptr;
}

Reply apply_interface(Netlink& nl, const Interface& itf, const NlLink& link) {
  std::string who = "interface " + link.name + " (" + itf.mac + ")";
  int err = 0;
  bool is_up = (link.flags & IFF_UP) != 0;
  if (!itf.name.empty() && itf.name != link.name) {
    // The kernel renames only links that are down.
    if (is_up && (err = nl.set_link(link.index, "", 0, 0)) != 0) return net_failed(who + ": set down to rename", -err);
    is_up = false;
    if ((err = nl.set_link(link.index, itf.name, 0, -1)) != 0) {
      if (link.flags & IFF_UP) nl.set_link(link.index, "", 0, 1);  // as it was
      return net_failed(who + ": rename to " + itf.name, -err);
    }
    who = "interface " + itf.name + " (" + itf.mac + ")";
  }
  if (itf.mtu > 0 && static_cast<unsigned>(itf.mtu) != link.mtu &&
      (err = nl.set_link(link.index, "", static_cast<unsigned>(itf.mtu), -1)) != 0) {
    return net_failed(who + ": set MTU " + std::to_string(itf.mtu), -err);
  }
  for (const Cidr& c : itf.addresses) {
    if ((err = nl.add_address(link.index, c.addr, c.prefix)) != 0) return net_failed(who + ": add address " + c.text, -err);
  }
  if (itf.up != is_up && (err = nl.set_link(link.index, "", 0, itf.up ? 1 : 0)) != 0) {
    return net_failed(who + (itf.up ? ": set up" : ": set down"), -err);
  }
  return Reply::ok();
}

// Writes dir/name atomically: a temporary file in the same directory, then rename().
bool write_atomic(const std::string& dir, const std::string& name, const std::string& text, std::string* error) {
  std::string path = dir + "/" + name, tmp = dir + "/." + name + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    *error = "create " + tmp + ": " + strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  int err = done == text.size() ? 0 : errno;
  if (!err && fchmod(fd, 0644) != 0) err = errno;  // past the umask
  if (!err && fsync(fd) != 0) err = errno;
  close(fd);
  if (!err && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    unlink(tmp.c_str());
    *error = "write " + path + ": " + strerror(err);
    return false;
  }
  return true;
}

bool mkdir_p(const std::string& path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    if (mkdir(path.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string resolv_conf(const NetConfig& cfg) {
  std::string s;
  for (const std::string& ns : cfg.nameservers) s += "nameserver " + ns + "\n";
  auto line = [&](const char* key, const std::vector<std::string>& words) {
    if (words.empty()) return;
    s += key;
    for (const std::string& w : words) s += " " + w;
    s += "\n";
  };
  line("search", cfg.search);
  line("options", cfg.options);
  return s;
}

std::string hosts_file(const NetConfig& cfg) {
  std::string s = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const HostEntry& h : cfg.hosts) {
    s += h.ip + "\t";
    for (size_t i = 0; i < h.names.size(); i++) s += (i ? " " : "") + h.names[i];
    s += "\n";
  }
  return s;
}

std::string net_dir(const Agent& a) { return a.containers.run_dir + "/net"; }

void remove_old_generations(const Agent& a) {
  std::string gen_dir = net_dir(a) + "/gen";
  DIR* d = opendir(gen_dir.c_str());
  if (!d) return;
  std::set<std::string> keep;
  for (const auto& [name, path] : a.net_files) keep.insert(path);
  while (dirent* e = readdir(d)) {
    std::string path = gen_dir + "/" + e->d_name;
    if (e->d_name[0] != '.' && !keep.count(path)) unlink(path.c_str());
  }
  closedir(d);
}

// Step 1-3 of docs/agent-protocol.md, "Network": lo, then each interface by MAC. *links is the
// interfaces as they are afterwards (names and MTUs), and *result the answer's "interfaces".
Reply apply_interfaces(Netlink& nl, const NetConfig& cfg, std::vector<NlLink>* links, json::Value* result) {
  int err = nl.list_links(links);
  if (err != 0) return net_failed("list interfaces", -err);
  if (const NlLink* lo = find_link(*links, "lo")) {
    if (!(lo->flags & IFF_UP) && (err = nl.set_link(lo->index, "", 0, 1)) != 0) return net_failed("interface lo: set up", -err);
  }
  // Every MAC is looked up before anything changes, so a missing NIC changes nothing.
  std::vector<NlLink> found;
  for (size_t i = 0; i < cfg.interfaces.size(); i++) {
    const NlLink* l = find_link(*links, cfg.interfaces[i].mac);
    if (!l) {
      return Reply::error("NOT_FOUND", "interfaces[" + std::to_string(i) + "]: no interface has MAC " + cfg.interfaces[i].mac);
    }
    found.push_back(*l);
  }
  for (size_t i = 0; i < cfg.interfaces.size(); i++) {
    Reply r = apply_interface(nl, cfg.interfaces[i], found[i]);
    if (r.kind != Reply::Kind::kOk) return r;
  }
  links->clear();
  if ((err = nl.list_links(links)) != 0) return net_failed("list interfaces", -err);
  *result = json::Value::array();
  for (const Interface& itf : cfg.interfaces) {
    const NlLink* l = find_link(*links, itf.mac);
    if (!l) continue;  // gone meanwhile (hot-unplugged)
    json::Value o = json::Value::object();
    o.set("mac", json::Value::string(itf.mac));
    o.set("name", json::Value::string(l->name));
    o.set("mtu", json::Value::number(l->mtu));
    o.set("index", json::Value::number(l->index));
    result->push(std::move(o));
  }
  return Reply::ok();
}

// Step 4: routes on a link first, so that a gateway is reachable when its route is added.
Reply apply_routes(Netlink& nl, const NetConfig& cfg, const std::vector<NlLink>& links) {
  for (int pass = 0; pass < 2; pass++) {
    for (const Route& r : cfg.routes) {
      if (r.has_gateway != (pass == 1)) continue;
      int oif = 0;
      if (!r.iface.empty()) {
        const NlLink* l = find_link(links, r.iface);
        if (!l) return Reply::error("NOT_FOUND", r.what + ": no interface " + r.iface);
        oif = l->index;
      }
      int err = nl.add_route(r.dest.addr, r.dest.prefix, r.has_gateway ? &r.gateway : nullptr, oif,
                             static_cast<uint32_t>(r.metric), r.has_metric);
      if (err != 0) return net_failed(r.what, -err);
    }
  }
  return Reply::ok();
}

// Step 5a: the given files. Each is a new generation file, whose inode is then also renamed over
// <run>/net/<name>. Containers bind the generation file: a bind whose source was renamed over
// cannot have another mounted on top of it (its dentry is unlinked), and binding on top is what
// makes an update atomic for readers in the container. *changed: the binds of what was written,
// also when a later file fails.
Reply write_files(Agent& a, const NetConfig& cfg, std::vector<FileBind>* changed) {
  std::string dir = net_dir(a), gen_dir = dir + "/gen", error;
  if (!mkdir_p(gen_dir)) return Reply::error("NETWORK_FAILED", "mkdir " + gen_dir + ": " + strerror(errno));
  uint64_t gen = ++a.net_generation;
  struct Item { bool given; const char* name; std::string text; };
  Item items[] = {{cfg.has_dns, kFiles[0], resolv_conf(cfg)},
                  {cfg.has_hosts, kFiles[1], hosts_file(cfg)},
                  {cfg.has_hostname, kFiles[2], cfg.hostname + "\n"}};
  for (const Item& it : items) {
    if (!it.given) continue;
    std::string gen_name = std::string(it.name) + "." + std::to_string(gen);
    std::string gen_path = gen_dir + "/" + gen_name, tmp = dir + "/." + it.name + ".tmp";
    if (!write_atomic(gen_dir, gen_name, it.text, &error)) return Reply::error("NETWORK_FAILED", error);
    unlink(tmp.c_str());
    if (link(gen_path.c_str(), tmp.c_str()) != 0 || rename(tmp.c_str(), (dir + "/" + it.name).c_str()) != 0) {
      return Reply::error("NETWORK_FAILED", "replace " + dir + "/" + it.name + ": " + strerror(errno));
    }
    a.net_files[it.name] = gen_path;
    changed->push_back(FileBind{gen_path, std::string("etc/") + it.name});
  }
  return Reply::ok();
}

// Step 5b: the new files into every created or running container, over the previous binds. One
// container's failure does not hold back the others.
Reply bind_into_containers(Agent& a, const std::vector<FileBind>& changed) {
  bool live = false;
  std::string failures;
  for (auto& [id, ctr] : a.containers.all) {
    if (ctr->state == ContainerState::kStopped || ctr->exited) continue;
    live = true;
    std::string error;
    if (mounts_inject_files(ctr->pid, changed, &error)) continue;
    // An init that died a moment ago (not reaped yet) has no mount namespace left: nothing to do.
    std::string ns = "/proc/" + std::to_string(ctr->pid) + "/ns/mnt";
    if (access(ns.c_str(), F_OK) != 0) continue;
    failures += std::string(failures.empty() ? "" : "; ") + "container \"" + id + "\": " + error;
  }
  // Older generations stay while a container may have them under its current bind (removing one
  // would detach what is mounted on it); with no live container none is needed.
  if (!live) remove_old_generations(a);
  return failures.empty() ? Reply::ok() : Reply::error("NETWORK_FAILED", failures);
}

Reply op_configure_network(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  NetConfig cfg;
  if (!parse_config(args, &cfg)) return Reply::error("BAD_REQUEST", args.error());

  Netlink nl;
  int err = nl.open();
  if (err != 0) return net_failed("netlink socket", -err);
  std::vector<NlLink> links;
  json::Value interfaces;
  Reply r = apply_interfaces(nl, cfg, &links, &interfaces);
  if (r.kind == Reply::Kind::kOk) r = apply_routes(nl, cfg, links);
  if (r.kind != Reply::Kind::kOk) return r;

  if (cfg.has_dns || cfg.has_hosts || cfg.has_hostname) {
    std::vector<FileBind> changed;
    r = write_files(a, cfg, &changed);
    if (r.kind == Reply::Kind::kOk && cfg.has_hostname && a.pid1 &&
        sethostname(cfg.hostname.data(), cfg.hostname.size()) != 0) {
      r = net_failed("sethostname " + cfg.hostname, errno);
    }
    // What was written goes into the containers even when a later step failed, so that they
    // never see other files than a container created now would.
    Reply binds = changed.empty() ? Reply::ok() : bind_into_containers(a, changed);
    if (r.kind != Reply::Kind::kOk) return r;
    if (binds.kind != Reply::Kind::kOk) return binds;
  }
  json::Value result = json::Value::object();
  result.set("interfaces", std::move(interfaces));
  return Reply::ok(std::move(result));
}

}  // namespace

bool valid_hostname(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (size_t i = 0; i < s.size(); i++) {
    char ch = s[i];
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum && (i == 0 || (ch != '-' && ch != '.'))) return false;
  }
  return true;
}

bool network_config_args(Args& args) {
  NetConfig cfg;
  return parse_config(args, &cfg);
}

bool network_lo_up() {
  Netlink nl;
  int err = nl.open();
  unsigned index = if_nametoindex("lo");
  if (err == 0 && index == 0) err = -errno;
  if (err == 0) err = nl.set_link(static_cast<int>(index), "", 0, 1);
  if (err != 0) logf("lo up: %s", strerror(-err));
  return err == 0;
}

std::vector<FileBind> network_container_files(const Agent& a) {
  std::vector<FileBind> out;
  for (const char* f : kFiles) {
    auto it = a.net_files.find(f);
    if (it != a.net_files.end()) out.push_back(FileBind{it->second, std::string("etc/") + f});
  }
  return out;
}

const std::vector<Op> kNetworkOps = {
    {"configure_network", op_configure_network},
};
