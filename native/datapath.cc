#include "datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <vector>

#include "drain.h"
#include "errors.h"
#include "flowscope.h"
#include "flowscope.skel.h"
#include "test_run.h"

namespace flowscope {

// libbpf's warnings (the verifier log among them) are kept so that a failed
// load can say why; libbpf prints nothing itself.
static std::mutex g_log_mutex;
static std::string g_libbpf_log;

static int CaptureLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_libbpf_log.append(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  if (g_libbpf_log.size() > 64 * 1024) g_libbpf_log.erase(0, g_libbpf_log.size() - 32 * 1024);
  return 0;
}

static std::string TakeLibbpfLogTail() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string tail = g_libbpf_log.size() > 4000 ? g_libbpf_log.substr(g_libbpf_log.size() - 4000) : g_libbpf_log;
  g_libbpf_log.clear();
  return tail;
}

Napi::Object Datapath::Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpfLog);
  Napi::Function cls = DefineClass(env, "Datapath", {
      InstanceMethod<&Datapath::Attach>("attach"),
      InstanceMethod<&Datapath::Detach>("detach"),
      InstanceMethod<&Datapath::Drain>("drain"),
      InstanceMethod<&Datapath::TestRun>("testRun"),
      InstanceMethod<&Datapath::Info>("info"),
      InstanceMethod<&Datapath::Close>("close"),
      InstanceMethod<&Datapath::Adopted>("adopted"),
      InstanceMethod<&Datapath::ForgetIface>("forgetIface"),
      InstanceMethod<&Datapath::IfaceStatsIfindexes>("ifaceStatsIfindexes"),
      InstanceMethod<&Datapath::SetLocalAddresses>("setLocalAddresses"),
      InstanceMethod<&Datapath::PinnedState>("pinnedState"),
      InstanceMethod<&Datapath::SetOwnerApi>("setOwnerApi"),
      InstanceMethod<&Datapath::MarkExported>("markExported"),
      InstanceMethod<&Datapath::InjectDrainFault>("injectDrainFault"),
  });
  exports.Set("Datapath", cls);
  return exports;
}

// The verifier gives up with EAGAIN when a signal is pending on the loading
// thread, and libbpf retries only a few times: a stream of SIGHUPs (reloads)
// or a SIGTERM during start-up would fail the load. Blocked on this thread,
// the kernel hands process signals to another of Node's threads, and Node's
// handlers run as usual; the mask is restored after the load.
static int LoadBlockingSignals(flowscope_bpf* skel) {
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGALRM, SIGWINCH})
    sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int err = flowscope_bpf__load(skel);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return err;
}

// The maps that are pinned (all of the object's but .rodata, which holds only
// the knobs fixed at load), by their pin name.
struct PinnedMap {
  const char* name;
  bpf_map* map;
  bool sized_by_option;  // max_entries comes from an option (else fixed by the object)
};

// new Datapath({ flowMapEntries, ifaceMapEntries, benchFlowSpread, loadBenchPrograms, pinDir, drainBatch, attribution })
// Arguments are validated in TypeScript (src/datapath/native.ts).
Datapath::Datapath(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Datapath>(info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info[0].As<Napi::Object>();
  flow_map_entries_ = opts.Get("flowMapEntries").As<Napi::Number>().Uint32Value();
  uint32_t iface_entries = opts.Get("ifaceMapEntries").As<Napi::Number>().Uint32Value();
  uint32_t spread = opts.Get("benchFlowSpread").As<Napi::Number>().Uint32Value();
  bool load_bench = opts.Get("loadBenchPrograms").As<Napi::Boolean>().Value();
  std::string pin_dir = opts.Has("pinDir") && opts.Get("pinDir").IsString() ? opts.Get("pinDir").As<Napi::String>().Utf8Value() : "";
  if (opts.Has("drainBatch") && opts.Get("drainBatch").IsNumber()) drain_batch_ = opts.Get("drainBatch").As<Napi::Number>().Uint32Value();

  ncpus_ = libbpf_num_possible_cpus();
  if (ncpus_ <= 0) ThrowSys(env, ncpus_, "libbpf_num_possible_cpus", "this host");

  TakeLibbpfLogTail();
  skel_ = flowscope_bpf__open();
  if (!skel_) ThrowSys(env, -errno, "flowscope_bpf__open", "the embedded BPF object");

  // Knobs, between open and load.
  int err = bpf_map__set_max_entries(skel_->maps.flows_gen0, flow_map_entries_);
  if (!err) err = bpf_map__set_max_entries(skel_->maps.flows_gen1, flow_map_entries_);
  if (!err) err = bpf_map__set_max_entries(skel_->maps.iface_stats, iface_entries);
  skel_->rodata->bench_flow_spread = spread;
  skel_->rodata->attribution = opts.Has("attribution") ? opts.Get("attribution").ToBoolean().Value() : true;
  if (!err) err = bpf_program__set_autoload(skel_->progs.flowscope_bench_empty_tc, load_bench);
  if (!err) err = bpf_program__set_autoload(skel_->progs.flowscope_bench_empty_xdp, load_bench);
  if (err) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    ThrowSys(env, err, "bpf_map__set_max_entries", "the flow maps");
  }
  if (!pin_dir.empty()) PreparePins(env, pin_dir);

  err = LoadBlockingSignals(skel_);
  if (err) {
    SysError e;
    e.err = -err;
    e.call = "flowscope_bpf__load";
    e.context = "the BPF programs and maps";
    e.detail = TakeLibbpfLogTail();
    if (resumed_.adopted)
      e.hint = "the maps pinned at " + pin_dir + " do not fit this version's; `flowscope detach` removes them "
               "(their undrained counts are lost), then start again";
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    previous_maps_.Release();
    if (pins_.is_open()) previous_maps_.Restore(pins_);
    pins_.Release();
    throw ToJsError(env, e);
  }
  flow_map_entries_ = bpf_map__max_entries(skel_->maps.flows_gen0);
  if (!resumed_.adopted) {
    skel_->bss->active_gen = 0;
  } else {
    resumed_.drained_until_realtime_ns = skel_->bss->drained_until_realtime_ns;
    resumed_.drained_until_mono_ns = skel_->bss->drained_until_mono_ns;
    resumed_.drain_seq = skel_->bss->drain_seq;
    resumed_.exported_seq = skel_->bss->exported_seq;
  }
  if (pins_.is_open()) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    skel_->bss->owner_pid = static_cast<uint32_t>(getpid());
    skel_->bss->owner_started_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
    memset(skel_->bss->owner_api, 0, sizeof(skel_->bss->owner_api));
    AdoptPinned();
  }
}

// Locks the pin directory and points every map at its pin: libbpf reuses a
// pinned map (the previous agent's, with its counts) or creates and pins it.
void Datapath::PreparePins(Napi::Env env, const std::string& dir) {
  SysError e = pins_.Open(dir);
  if (e.failed()) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    if (e.err == EWOULDBLOCK) {
      std::string owner = DescribePinnedOwner(dir);
      Napi::Error error = Napi::Error::New(
          env, "another flowscope agent" + (owner.empty() ? std::string() : " (" + owner + ")") + " owns " + dir +
                   "; stop it first, or give this one another --node");
      error.Set("code", Napi::String::New(env, "EOWNED"));
      throw error;
    }
    throw ToJsError(env, e);
  }
  // Flow maps of an earlier layout go aside before libbpf would refuse them.
  e = previous_maps_.SetAside(pins_);
  if (e.failed()) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    pins_.Release();
    throw ToJsError(env, e);
  }
  const PinnedMap maps[] = {
      {"flows_gen0", skel_->maps.flows_gen0, true}, {"flows_gen1", skel_->maps.flows_gen1, true},
      {"flow_gens", skel_->maps.flow_gens, false},  {"iface_stats", skel_->maps.iface_stats, true},
      {"failures", skel_->maps.failures, false},    {"bss", skel_->maps.bss, false},
  };
  for (const PinnedMap& m : maps) {
    bpf_map* map = m.map;
    std::string path = pins_.MapPath(m.name);
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
      // A pinned map keeps its size: the counts in it outlive a changed option.
      bpf_map_info mi;
      memset(&mi, 0, sizeof(mi));
      unsigned len = sizeof(mi);
      if (m.sized_by_option && bpf_obj_get_info_by_fd(fd, &mi, &len) == 0 && mi.max_entries != bpf_map__max_entries(map))
        bpf_map__set_max_entries(map, mi.max_entries);
      if (map == skel_->maps.bss) resumed_.adopted = true;
      close(fd);
    }
    int err = bpf_map__set_pin_path(map, path.c_str());
    if (err) {
      flowscope_bpf__destroy(skel_);
      skel_ = nullptr;
      previous_maps_.Release();
      previous_maps_.Restore(pins_);
      pins_.Release();
      ThrowSys(env, err, "bpf_map__set_pin_path", path);
    }
  }
}

const bpf_program* Datapath::ProgramFor(Hook hook) const {
  switch (hook) {
    case Hook::TcIngress: return skel_->progs.flowscope_tc_ingress;
    case Hook::TcEgress: return skel_->progs.flowscope_tc_egress;
    case Hook::Xdp: return skel_->progs.flowscope_xdp_ingress;
  }
  return nullptr;
}

// Takes over every attachment the pinned state holds, swapping in this
// process's programs (same maps) without a moment uncounted. What cannot be
// taken over (interface gone, filter replaced by another tool) is unpinned.
void Datapath::AdoptPinned() {
  for (const PinnedAttachment& p : pins_.List()) {
    int new_prog = bpf_program__fd(ProgramFor(p.hook));
    auto a = std::make_unique<Attachment>();
    std::string where = std::string(HookName(p.hook)) + " on ifindex " + std::to_string(p.ifindex);
    if (p.is_link) {
      std::string path = pins_.LinkPath(p.hook, p.ifindex);
      int fd = bpf_obj_get(path.c_str());
      if (fd < 0) {
        adopt_problems_.push_back(where + ": cannot open pinned link (" + std::string(strerror(errno)) + ")");
        // Whatever it runs may still count into an earlier version's maps.
        earlier_programs_++;
        continue;
      }
      SysError e = AdoptLink(fd, p.ifindex, p.hook, new_prog, a.get());
      if (e.err == ENOENT) {
        PinDir::Unpin(path);
        close(fd);
        continue;
      }
      bool replaced = !e.failed();
      if (!replaced) {
        earlier_programs_++;
        // The old program keeps counting into the same (pinned) maps: still exact.
        adopt_problems_.push_back(where + ": kept the previous program (" + ToJsErrorText(e) + ")");
        a->ifindex = p.ifindex;
        a->hook = p.hook;
        a->mechanism = p.hook == Hook::Xdp ? Mechanism::XdpLink : Mechanism::Tcx;
        a->link_fd = fd;
      }
      uint32_t handle = next_handle_++;
      adopted_[handle] = replaced;
      attachments_[handle] = std::move(a);
      continue;
    }
    std::string path = pins_.FilterPath(p.hook, p.ifindex);
    int pinned_prog = bpf_obj_get(path.c_str());
    if (pinned_prog < 0) {
      PinDir::Unpin(path);
      continue;
    }
    SysError e = AdoptClsact(pinned_prog, p.ifindex, p.hook, p.created_qdisc, new_prog, a.get());
    close(pinned_prog);
    if (e.failed()) {
      if (e.err != ENOENT) {
        adopt_problems_.push_back(where + ": " + ToJsErrorText(e));
        // The filter may still run the earlier program and count into its maps.
        earlier_programs_++;
      }
      PinDir::Unpin(path);
      continue;
    }
    pins_.Pin(new_prog, path);
    // The marker is a pin of a program too: move it to ours, so the old one can go.
    if (p.created_qdisc) pins_.Pin(new_prog, pins_.QdiscMarkerPath(p.ifindex));
    uint32_t handle = next_handle_++;
    adopted_[handle] = true;
    attachments_[handle] = std::move(a);
  }
  // Qdisc markers whose interface has no filter of ours left.
  std::set<int> with_filters;
  for (auto& [h, a] : attachments_)
    if (a->mechanism == Mechanism::Clsact) with_filters.insert(a->ifindex);
  for (const PinnedAttachment& p : pins_.List())
    if (!p.is_link && p.created_qdisc && !with_filters.count(p.ifindex)) PinDir::Unpin(pins_.QdiscMarkerPath(p.ifindex));
}

SysError Datapath::PinAttachment(const Attachment& a) {
  if (!pins_.is_open()) return SysError{};
  if (a.mechanism != Mechanism::Clsact) return pins_.Pin(a.link_fd, pins_.LinkPath(a.hook, a.ifindex));
  int prog_fd = bpf_program__fd(ProgramFor(a.hook));
  SysError e = pins_.Pin(prog_fd, pins_.FilterPath(a.hook, a.ifindex));
  if (!e.failed() && a.created_clsact) e = pins_.Pin(prog_fd, pins_.QdiscMarkerPath(a.ifindex));
  return e;
}

void Datapath::UnpinAttachment(const Attachment& a, bool last_on_iface) {
  if (!pins_.is_open()) return;
  if (a.mechanism != Mechanism::Clsact) {
    PinDir::Unpin(pins_.LinkPath(a.hook, a.ifindex));
    return;
  }
  PinDir::Unpin(pins_.FilterPath(a.hook, a.ifindex));
  if (last_on_iface) PinDir::Unpin(pins_.QdiscMarkerPath(a.ifindex));
}

Datapath::~Datapath() {
  // An orderly stop calls close(); here the process is going away: pinned
  // attachments stay for the next agent, unpinned ones are detached.
  if (pins_.is_open()) ReleaseAll();
  else DetachAll();
  if (skel_) flowscope_bpf__destroy(skel_);
}

void Datapath::EnsureOpen(Napi::Env env) const {
  if (!skel_) throw Napi::Error::New(env, "the datapath is closed");
}

void Datapath::DetachAll() {
  for (auto& [id, a] : attachments_) {
    UnpinAttachment(*a, true);
    DetachProgram(a.get());
  }
  attachments_.clear();
  adopted_.clear();
  earlier_programs_ = 0;
}

// Closes this process's references and leaves every attachment pinned and counting.
void Datapath::ReleaseAll() {
  for (auto& [id, a] : attachments_)
    if (a->link_fd >= 0) close(a->link_fd);
  attachments_.clear();
  adopted_.clear();
  earlier_programs_ = 0;
  previous_maps_.Release();
  pins_.Release();
}

// The iface_stats keys of an interface: both directions, both generations.
static std::array<iface_key, 2 * FLOW_GENERATIONS> IfaceKeys(int ifindex) {
  std::array<iface_key, 2 * FLOW_GENERATIONS> keys{};
  for (uint8_t dir = 0; dir < 2; dir++) {
    for (uint8_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
      iface_key& key = keys[dir * FLOW_GENERATIONS + gen];
      key.ifindex = ifindex;
      key.direction = dir;
      key.gen = gen;
    }
  }
  return keys;
}

// Creates the iface_stats entries of an interface for both directions and
// generations, so the programs only ever look them up.
void Datapath::PrecreateIfaceEntries(Napi::Env env, int ifindex) {
  std::vector<iface_value> zero(ncpus_);
  memset(zero.data(), 0, zero.size() * sizeof(iface_value));
  int fd = bpf_map__fd(skel_->maps.iface_stats);
  for (const iface_key& key : IfaceKeys(ifindex)) {
    int err = bpf_map_update_elem(fd, &key, zero.data(), BPF_NOEXIST);
    if (err && err != -EEXIST) ThrowSys(env, err, "bpf_map_update_elem(iface_stats)", "ifindex " + std::to_string(ifindex));
  }
}

// attach(ifindex, hook: 'tc-ingress'|'tc-egress'|'xdp', mechanism: 'tcx'|'clsact')
//   -> { handle, mechanism }
Napi::Value Datapath::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  std::string hook_name = info[1].As<Napi::String>().Utf8Value();
  std::string mech_name = info[2].As<Napi::String>().Utf8Value();

  Hook hook;
  const bpf_program* prog;
  if (hook_name == "tc-ingress") {
    hook = Hook::TcIngress;
    prog = skel_->progs.flowscope_tc_ingress;
  } else if (hook_name == "tc-egress") {
    hook = Hook::TcEgress;
    prog = skel_->progs.flowscope_tc_egress;
  } else if (hook_name == "xdp") {
    hook = Hook::Xdp;
    prog = skel_->progs.flowscope_xdp_ingress;
  } else {
    throw Napi::TypeError::New(env, "hook must be tc-ingress, tc-egress or xdp");
  }
  Mechanism mech = mech_name == "clsact" ? Mechanism::Clsact : Mechanism::Tcx;

  for (auto& [id, a] : attachments_)
    if (a->ifindex == ifindex && a->hook == hook)
      throw Napi::Error::New(env, std::string("already attached: ") + HookName(hook) + " on ifindex " + std::to_string(ifindex));

  PrecreateIfaceEntries(env, ifindex);
  auto a = std::make_unique<Attachment>();
  SysError e = AttachProgram(prog, ifindex, hook, mech, a.get());
  if (e.failed()) throw ToJsError(env, e);
  e = PinAttachment(*a);
  if (e.failed()) {
    UnpinAttachment(*a, true);
    DetachProgram(a.get());
    throw ToJsError(env, e);
  }

  uint32_t handle = next_handle_++;
  Napi::Object result = Napi::Object::New(env);
  result.Set("handle", Napi::Number::New(env, handle));
  result.Set("mechanism", Napi::String::New(env, MechanismName(a->mechanism)));
  attachments_[handle] = std::move(a);
  return result;
}

// detach(handle): detaches one attachment; unknown handles are an error.
Napi::Value Datapath::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle = info[0].As<Napi::Number>().Uint32Value();
  auto it = attachments_.find(handle);
  if (it == attachments_.end()) throw Napi::Error::New(env, "no attachment with handle " + std::to_string(handle));
  Attachment* a = it->second.get();
  // The clsact qdisc is shared by both tc hooks of an interface: whoever
  // created it hands the duty to destroy it to a sibling still attached.
  bool last_on_iface = true;
  for (auto& [id, other] : attachments_) {
    if (other.get() != a && other->ifindex == a->ifindex && other->mechanism == Mechanism::Clsact &&
        a->mechanism == Mechanism::Clsact) {
      last_on_iface = false;
      if (a->created_clsact) {
        other->created_clsact = true;
        a->created_clsact = false;
      }
      break;
    }
  }
  UnpinAttachment(*a, last_on_iface);
  SysError e = DetachProgram(a);
  attachments_.erase(it);
  auto adopted = adopted_.find(handle);
  if (adopted != adopted_.end() && !adopted->second) earlier_programs_--;
  adopted_.erase(handle);
  if (e.failed()) throw ToJsError(env, e);
  return env.Undefined();
}

Napi::Value Datapath::Drain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  bool expected = false;
  if (!busy_.compare_exchange_strong(expected, true))
    throw Napi::Error::New(env, "a drain or test run is already running on this datapath");
  // drain(target: ArrayBuffer of flowMapEntries x (flow_key + flow_value) bytes)
  auto* worker = new DrainWorker(env, this, info[0].As<Napi::ArrayBuffer>());
  worker->Queue();
  return worker->Promise();
}

// testRun(program: string, frame: Buffer, repeat: number) -> Promise<{ retval, durationNs }>
Napi::Value Datapath::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Buffer<uint8_t> frame = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t repeat = info[2].As<Napi::Number>().Uint32Value();
  bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, name.c_str());
  if (!prog || bpf_program__fd(prog) < 0)
    throw Napi::Error::New(env, "no loaded program named " + name);
  bool expected = false;
  if (!busy_.compare_exchange_strong(expected, true))
    throw Napi::Error::New(env, "a drain or test run is already running on this datapath");
  auto* worker = new TestRunWorker(env, this, bpf_program__fd(prog), name,
                                   std::vector<uint8_t>(frame.Data(), frame.Data() + frame.Length()), repeat);
  worker->Queue();
  return worker->Promise();
}

static uint32_t MapId(const bpf_map* map) {
  bpf_map_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  return bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) == 0 ? info.id : 0;
}

static uint32_t ProgId(const bpf_program* prog) {
  if (bpf_program__fd(prog) < 0) return 0;
  bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  return bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0 ? info.id : 0;
}

// info() -> sizes, ids and the struct layout (for the layout test and the benchmarks)
Napi::Value Datapath::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ncpus", ncpus_);
  o.Set("flowMapEntries", flow_map_entries_);
  o.Set("activeGen", skel_->bss->active_gen);

  Napi::Object maps = Napi::Object::New(env);
  maps.Set("flows_gen0", MapId(skel_->maps.flows_gen0));
  maps.Set("flows_gen1", MapId(skel_->maps.flows_gen1));
  maps.Set("flow_gens", MapId(skel_->maps.flow_gens));
  maps.Set("iface_stats", MapId(skel_->maps.iface_stats));
  maps.Set("failures", MapId(skel_->maps.failures));
  o.Set("mapIds", maps);

  Napi::Object progs = Napi::Object::New(env);
  progs.Set("flowscope_tc_ingress", ProgId(skel_->progs.flowscope_tc_ingress));
  progs.Set("flowscope_tc_egress", ProgId(skel_->progs.flowscope_tc_egress));
  progs.Set("flowscope_xdp_ingress", ProgId(skel_->progs.flowscope_xdp_ingress));
  o.Set("progIds", progs);

#define FIELD(obj, type, field) obj.Set(#field, Napi::Number::New(env, offsetof(type, field)))
  Napi::Object layout = Napi::Object::New(env);
  Napi::Object fk = Napi::Object::New(env);
  fk.Set("size", sizeof(flow_key));
  FIELD(fk, flow_key, ifindex); FIELD(fk, flow_key, sport); FIELD(fk, flow_key, dport);
  FIELD(fk, flow_key, src); FIELD(fk, flow_key, dst); FIELD(fk, flow_key, family);
  FIELD(fk, flow_key, direction); FIELD(fk, flow_key, proto); FIELD(fk, flow_key, icmp_type);
  FIELD(fk, flow_key, icmp_code); FIELD(fk, flow_key, pad);
  layout.Set("flow_key", fk);
  Napi::Object fv = Napi::Object::New(env);
  fv.Set("size", sizeof(flow_value));
  FIELD(fv, flow_value, packets); FIELD(fv, flow_value, bytes); FIELD(fv, flow_value, first_seen_ns);
  FIELD(fv, flow_value, last_seen_ns); FIELD(fv, flow_value, tcp_flags); FIELD(fv, flow_value, pad);
  FIELD(fv, flow_value, cgroup_id);
  layout.Set("flow_value", fv);
  Napi::Object ik = Napi::Object::New(env);
  ik.Set("size", sizeof(iface_key));
  FIELD(ik, iface_key, ifindex); FIELD(ik, iface_key, direction); FIELD(ik, iface_key, gen); FIELD(ik, iface_key, pad);
  layout.Set("iface_key", ik);
  Napi::Object iv = Napi::Object::New(env);
  iv.Set("size", sizeof(iface_value));
  FIELD(iv, iface_value, other_packets); FIELD(iv, iface_value, other_bytes);
  FIELD(iv, iface_value, overflow_packets); FIELD(iv, iface_value, overflow_bytes);
  layout.Set("iface_value", iv);
  Napi::Object it = Napi::Object::New(env);
  it.Set("size", sizeof(iface_totals));
  FIELD(it, iface_totals, packets); FIELD(it, iface_totals, bytes); FIELD(it, iface_totals, other_packets);
  FIELD(it, iface_totals, other_bytes); FIELD(it, iface_totals, overflow_packets); FIELD(it, iface_totals, overflow_bytes);
  layout.Set("iface_totals", it);
  Napi::Object ir = Napi::Object::New(env);
  ir.Set("size", sizeof(iface_record));
  FIELD(ir, iface_record, key); FIELD(ir, iface_record, totals);
  layout.Set("iface_record", ir);
  layout.Set("failureKinds", Napi::Number::New(env, FAIL_KIND_COUNT));
#undef FIELD
  o.Set("layout", layout);
  return o;
}

// close({ keepAttached }): frees this process's programs and maps. By default
// it detaches everything and removes every pin; with keepAttached (pinned
// datapaths only) the attachments stay pinned and counting for the next
// agent. Idempotent.
Napi::Value Datapath::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_.load()) throw Napi::Error::New(env, "cannot close while a drain or test run is running; await it first");
  bool keep = info.Length() > 0 && info[0].IsObject() && info[0].As<Napi::Object>().Get("keepAttached").ToBoolean().Value();
  SysError e;
  if (keep && pins_.is_open()) {
    ReleaseAll();
  } else {
    DetachAll();
  }
  if (skel_) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
  }
  previous_maps_.Release();
  if (pins_.is_open()) e = pins_.RemoveAll();
  if (e.failed()) throw ToJsError(env, e);
  return env.Undefined();
}

// adopted() -> [{ handle, ifindex, hook, mechanism, replaced }], and the problems met
Napi::Value Datapath::Adopted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array list = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& [handle, replaced] : adopted_) {
    auto it = attachments_.find(handle);
    if (it == attachments_.end()) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("handle", handle);
    o.Set("ifindex", it->second->ifindex);
    o.Set("hook", HookName(it->second->hook));
    o.Set("mechanism", MechanismName(it->second->mechanism));
    o.Set("replaced", replaced);
    list.Set(i++, o);
  }
  out.Set("attachments", list);
  Napi::Array problems = Napi::Array::New(env, adopt_problems_.size());
  for (size_t k = 0; k < adopt_problems_.size(); k++) problems.Set(static_cast<uint32_t>(k), adopt_problems_[k]);
  out.Set("problems", problems);
  return out;
}

// forgetIface(ifindex) -> bool: removes the interface's iface_stats entries
// once they hold nothing (the caller waits two drains after the detach, so
// both generations were drained); false if some count is still there.
Napi::Value Datapath::ForgetIface(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  for (auto& [id, a] : attachments_)
    if (a->ifindex == ifindex) return Napi::Boolean::New(env, false);
  int fd = bpf_map__fd(skel_->maps.iface_stats);
  std::vector<iface_value> per_cpu(ncpus_);
  for (const iface_key& key : IfaceKeys(ifindex)) {
    if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0) continue;
    for (const iface_value& v : per_cpu)
      if (v.other_packets || v.overflow_packets) return Napi::Boolean::New(env, false);
  }
  for (const iface_key& key : IfaceKeys(ifindex)) bpf_map_delete_elem(fd, &key);
  return Napi::Boolean::New(env, true);
}

// ifaceStatsIfindexes() -> the interfaces that have iface_stats entries
Napi::Value Datapath::IfaceStatsIfindexes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  int fd = bpf_map__fd(skel_->maps.iface_stats);
  std::set<uint32_t> seen;
  iface_key key, next;
  iface_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    seen.insert(key.ifindex);
  }
  Napi::Array out = Napi::Array::New(env, seen.size());
  uint32_t i = 0;
  for (uint32_t ifindex : seen) out.Set(i++, ifindex);
  return out;
}

// setLocalAddresses(addresses: string[]) -> number: makes local_addrs hold
// exactly these (text IPv4/IPv6, as os.networkInterfaces() gives them);
// returns how many it holds. Unparsable entries are skipped.
Napi::Value Datapath::SetLocalAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<local_addr> want;
  for (uint32_t i = 0; i < list.Length(); i++) {
    std::string text = list.Get(i).As<Napi::String>().Utf8Value();
    local_addr a{};
    if (inet_pton(AF_INET, text.c_str(), a.addr) == 1) a.family = 4;
    else if (inet_pton(AF_INET6, text.c_str(), a.addr) == 1) a.family = 6;
    else continue;
    want.push_back(a);
  }
  int fd = bpf_map__fd(skel_->maps.local_addrs);
  std::vector<local_addr> stale;
  local_addr key, next;
  local_addr* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    bool keep = false;
    for (const local_addr& w : want) keep = keep || memcmp(&w, &key, sizeof(key)) == 0;
    if (!keep) stale.push_back(key);
  }
  for (const local_addr& k : stale) bpf_map_delete_elem(fd, &k);
  uint8_t one = 1;
  uint32_t held = 0;
  for (const local_addr& a : want) {
    int err = bpf_map_update_elem(fd, &a, &one, BPF_ANY);
    if (err == -E2BIG) break;  // more addresses than the map holds: the rest are not attributed
    if (!err) held++;
  }
  return Napi::Number::New(env, held);
}

// pinnedState() -> { dir, adopted, drainedUntilRealtimeNs, drainedUntilMonoNs, drainSeq, exportedSeq,
//                    previousLayoutValueBytes, previousLayoutMaps (flow maps of an earlier layout set aside; 0: none) }
// as found at start (what the previous agent left), or null when not pinned.
Napi::Value Datapath::PinnedState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pins_.is_open()) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("dir", pins_.dir());
  o.Set("adopted", resumed_.adopted);
  o.Set("drainedUntilRealtimeNs", static_cast<double>(resumed_.drained_until_realtime_ns));
  o.Set("drainedUntilMonoNs", static_cast<double>(resumed_.drained_until_mono_ns));
  o.Set("drainSeq", static_cast<double>(resumed_.drain_seq));
  o.Set("exportedSeq", static_cast<double>(resumed_.exported_seq));
  o.Set("previousLayoutValueBytes", previous_maps_.value_size_found());
  o.Set("previousLayoutMaps", previous_maps_.left());
  return o;
}

// setOwnerApi(url): what a second agent's refusal names.
Napi::Value Datapath::SetOwnerApi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  std::string url = info[0].As<Napi::String>().Utf8Value();
  char* dst = skel_->bss->owner_api;
  size_t n = std::min(url.size(), sizeof(skel_->bss->owner_api) - 1);
  memset(dst, 0, sizeof(skel_->bss->owner_api));
  memcpy(dst, url.data(), n);
  return env.Undefined();
}

// markExported(drainSeq): every sink accepted the records of drains up to drainSeq.
Napi::Value Datapath::MarkExported(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  uint64_t seq = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  if (seq > skel_->bss->exported_seq) __atomic_store_n(&skel_->bss->exported_seq, seq, __ATOMIC_RELEASE);
  return env.Undefined();
}

// injectDrainFault(site, nth): test only; nth 0 turns it off.
Napi::Value Datapath::InjectDrainFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_.load()) throw Napi::Error::New(env, "cannot change faults while a drain is running");
  fault_.site = info[0].As<Napi::String>().Utf8Value();
  fault_.nth = info[1].As<Napi::Number>().Uint32Value();
  fault_.calls = 0;
  return env.Undefined();
}

}  // namespace flowscope
