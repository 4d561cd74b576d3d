#include "datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

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
      InstanceMethod<&Datapath::RemoveStale>("removeStale"),
      InstanceMethod<&Datapath::Drain>("drain"),
      InstanceMethod<&Datapath::TestRun>("testRun"),
      InstanceMethod<&Datapath::Info>("info"),
      InstanceMethod<&Datapath::Close>("close"),
  });
  exports.Set("Datapath", cls);
  return exports;
}

// new Datapath({ flowMapEntries, ifaceMapEntries, benchFlowSpread, loadBenchPrograms })
// Arguments are validated in TypeScript (src/datapath/native.ts).
Datapath::Datapath(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Datapath>(info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info[0].As<Napi::Object>();
  flow_map_entries_ = opts.Get("flowMapEntries").As<Napi::Number>().Uint32Value();
  uint32_t iface_entries = opts.Get("ifaceMapEntries").As<Napi::Number>().Uint32Value();
  uint32_t spread = opts.Get("benchFlowSpread").As<Napi::Number>().Uint32Value();
  bool load_bench = opts.Get("loadBenchPrograms").As<Napi::Boolean>().Value();

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
  if (!err) err = bpf_program__set_autoload(skel_->progs.flowscope_bench_empty_tc, load_bench);
  if (!err) err = bpf_program__set_autoload(skel_->progs.flowscope_bench_empty_xdp, load_bench);
  if (err) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    ThrowSys(env, err, "bpf_map__set_max_entries", "the flow maps");
  }

  err = flowscope_bpf__load(skel_);
  if (err) {
    SysError e;
    e.err = -err;
    e.call = "flowscope_bpf__load";
    e.context = "the BPF programs and maps";
    e.detail = TakeLibbpfLogTail();
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
    throw ToJsError(env, e);
  }
  skel_->bss->active_gen = 0;
}

Datapath::~Datapath() {
  DetachAll();
  if (skel_) flowscope_bpf__destroy(skel_);
}

void Datapath::EnsureOpen(Napi::Env env) const {
  if (!skel_) throw Napi::Error::New(env, "the datapath is closed");
}

void Datapath::DetachAll() {
  for (auto& [id, a] : attachments_) DetachProgram(a.get());
  attachments_.clear();
}

// Creates the iface_stats entries of an interface for both directions and
// generations, so the programs only ever look them up.
void Datapath::PrecreateIfaceEntries(Napi::Env env, int ifindex) {
  std::vector<iface_value> zero(ncpus_);
  memset(zero.data(), 0, zero.size() * sizeof(iface_value));
  int fd = bpf_map__fd(skel_->maps.iface_stats);
  for (uint8_t dir = 0; dir < 2; dir++) {
    for (uint8_t gen = 0; gen < FLOW_GENERATIONS; gen++) {
      iface_key key{};
      key.ifindex = ifindex;
      key.direction = dir;
      key.gen = gen;
      int err = bpf_map_update_elem(fd, &key, zero.data(), BPF_NOEXIST);
      if (err && err != -EEXIST) ThrowSys(env, err, "bpf_map_update_elem(iface_stats)", "ifindex " + std::to_string(ifindex));
    }
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
  bool adopt = adopted_clsact_.count(ifindex) > 0;
  SysError e = AttachProgram(prog, ifindex, hook, mech, adopt, a.get());
  if (e.failed()) throw ToJsError(env, e);
  if (adopt && a->created_clsact) adopted_clsact_.erase(ifindex);

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
  if (a->mechanism == Mechanism::Clsact && a->created_clsact) {
    for (auto& [id, other] : attachments_) {
      if (other.get() != a && other->ifindex == a->ifindex && other->mechanism == Mechanism::Clsact) {
        other->created_clsact = true;
        a->created_clsact = false;
        break;
      }
    }
  }
  SysError e = DetachProgram(a);
  attachments_.erase(it);
  if (e.failed()) throw ToJsError(env, e);
  return env.Undefined();
}

// removeStale(ifindex) -> number of clsact filters left by a dead flowscope that were removed
Napi::Value Datapath::RemoveStale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  SysError e;
  int removed = RemoveStaleClsact(ifindex, &e);
  if (e.failed()) throw ToJsError(env, e);
  if (removed > 0) adopted_clsact_.insert(ifindex);
  return Napi::Number::New(env, removed);
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

// close(): detaches everything and frees the programs and maps. Idempotent.
Napi::Value Datapath::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_.load()) throw Napi::Error::New(env, "cannot close while a drain or test run is running; await it first");
  DetachAll();
  if (skel_) {
    flowscope_bpf__destroy(skel_);
    skel_ = nullptr;
  }
  return env.Undefined();
}

}  // namespace flowscope
