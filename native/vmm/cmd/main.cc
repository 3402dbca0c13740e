// vc-vmm: one process per VM. Subcommands are dispatched here; each lives in its own file.
#include <cstdio>
#include <cstring>

int DumpAcpiMain(int argc, char** argv);  // cmd/dump_acpi.cc
int RunVmMain(int argc, char** argv);      // cmd/run.cc (run and restore)
int CapsMain(int argc, char** argv);       // cmd/caps.cc
int MonitorMain(int argc, char** argv);    // cmd/monitor.cc (internal to run --detach)
int JailProbeMain(int argc, char** argv);  // jail/jail_probe.cc
int LauncherMain(int argc, char** argv);   // cmd/launcher.cc
int SnapshotMain(int argc, char** argv);   // cmd/snapshot_verify.cc

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "dump-acpi") == 0) return DumpAcpiMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "run") == 0) return RunVmMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "restore") == 0) return RunVmMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "caps") == 0) return CapsMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "monitor") == 0) return MonitorMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "launcher") == 0) return LauncherMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "snapshot") == 0) return SnapshotMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "jail-probe") == 0) return JailProbeMain(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::puts("vc-vmm 0.1.0");
    return 0;
  }
  std::fprintf(stderr,
               "usage: vc-vmm run --config FILE|- [--detach] [--log FILE] [--cgroup DIR]...\n"
               "       vc-vmm restore --state FILE --memory FILE --config FILE|- [run's options]\n"
               "       vc-vmm launcher --socket PATH [--spares N]\n"
               "       vc-vmm snapshot verify --state FILE --memory FILE\n"
               "       vc-vmm caps\n"
               "       vc-vmm jail-probe --jail DIR [--jail-user UID:GID] [--jail-ro DIR]...\n"
               "       vc-vmm dump-acpi --vcpus N --slots K OUTDIR\n"
               "       vc-vmm --version\n");
  return 2;
}
