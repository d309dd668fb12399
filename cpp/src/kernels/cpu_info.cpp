#include "kernels/cpu_info.h"

#include <cpuid.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bprop::kernels {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "48K", "2048K", "32M" -> bytes; 0 for anything else.
int64_t parse_size(const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || value <= 0) return 0;
  switch (std::toupper(static_cast<unsigned char>(*end))) {
    case 'K':
      return value << 10;
    case 'M':
      return value << 20;
    case 'G':
      return value << 30;
    case '\0':
      return value;
  }
  return 0;
}

// The number of CPUs in a sysfs list such as "0-3,8,10-11".
int count_cpus(const std::string& list) {
  int count = 0;
  std::stringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      count += item.empty() ? 0 : 1;
    } else {
      count += std::atoi(item.c_str() + dash + 1) - std::atoi(item.c_str()) + 1;
    }
  }
  return count;
}

std::string model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t start = line.find_first_not_of(' ', colon + 1);
        if (start != std::string::npos) return line.substr(start);
      }
    }
  }
  unsigned int regs[12] = {};
  for (unsigned int i = 0; i < 3; ++i)
    if (!__get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                     &regs[4 * i + 3]))
      return "unknown";
  char brand[49] = {};
  std::memcpy(brand, regs, 48);
  std::string name(brand);
  const size_t start = name.find_first_not_of(' ');
  return start == std::string::npos ? "unknown" : name.substr(start);
}

CpuInfo read_cpu_info() {
  CpuInfo info;
  info.model = model_name();
  const std::string base = "/sys/devices/system/cpu/cpu0/cache/index";
  for (int index = 0; index < 8; ++index) {
    const std::string dir = base + std::to_string(index) + "/";
    const std::string level = read_line(dir + "level");
    if (level.empty()) break;
    const std::string type = read_line(dir + "type");
    if (type == "Instruction") continue;
    const int64_t size = parse_size(read_line(dir + "size"));
    if (level == "1") info.l1d_bytes = size;
    if (level == "2") info.l2_bytes = size;
    if (level == "3") {
      info.l3_bytes = size;
      info.l3_sharing = count_cpus(read_line(dir + "shared_cpu_list"));
    }
  }
  return info;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();
  return info;
}

}  // namespace bprop::kernels
