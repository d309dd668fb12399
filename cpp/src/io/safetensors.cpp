// safetensors reading and writing, with a strict JSON subset parser for the header.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "bprop/io.h"
#include "bprop/ops.h"

namespace bprop {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the safetensors limit

[[noreturn]] void fail(const std::string& what, const std::string& problem) {
  throw std::invalid_argument("[load] " + what + ": " + problem);
}

// ---- the header's JSON: objects, arrays, strings, non-negative integers ----

struct Json {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::vector<std::pair<std::string, Json>> members;  // Object, in order
  std::vector<Json> items;                            // Array
  std::string text;                                   // String
  uint64_t integer = 0;                               // Integer

  const Json* find(const std::string& key) const {
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
};

class Parser {
 public:
  Parser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  Json document() {
    Json value = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the JSON header");
    return value;
  }

 private:
  [[noreturn]] void error(const std::string& problem) {
    fail(what_, "header is not valid JSON: " + problem + " at byte " + std::to_string(pos_));
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  char peek() {
    skip_space();
    if (pos_ >= s_.size()) error("unexpected end");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++pos_;
  }
  Json parse_value(int depth) {
    if (depth > 8) error("nested too deeply");
    const char c = peek();
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      Json out;
      out.kind = Json::Kind::String;
      out.text = parse_string();
      return out;
    }
    if (c >= '0' && c <= '9') return parse_integer();
    error("unsupported JSON value (only objects, arrays, strings and non-negative integers)");
  }
  Json parse_object(int depth) {
    Json out;
    out.kind = Json::Kind::Object;
    expect('{');
    if (peek() == '}') {
      ++pos_;
      return out;
    }
    while (true) {
      if (peek() != '"') error("expected a string key");
      std::string key = parse_string();
      if (out.find(key)) fail(what_, "duplicate name \"" + key + "\" in the header");
      expect(':');
      out.members.emplace_back(std::move(key), parse_value(depth + 1));
      const char c = peek();
      ++pos_;
      if (c == '}') return out;
      if (c != ',') error("expected ',' or '}'");
    }
  }
  Json parse_array(int depth) {
    Json out;
    out.kind = Json::Kind::Array;
    expect('[');
    if (peek() == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      out.items.push_back(parse_value(depth + 1));
      const char c = peek();
      ++pos_;
      if (c == ']') return out;
      if (c != ',') error("expected ',' or ']'");
    }
  }
  Json parse_integer() {
    Json out;
    out.kind = Json::Kind::Integer;
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const uint64_t digit = static_cast<uint64_t>(s_[pos_] - '0');
      if (out.integer > (UINT64_MAX - digit) / 10) error("integer too large");
      out.integer = out.integer * 10 + digit;
      ++pos_;
    }
    if (pos_ - start > 1 && s_[start] == '0') error("leading zero");
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
      error("only integers are allowed");
    return out;
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) error("control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) error("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u':
          append_utf8(parse_code_point(), out);
          break;
        default:
          error("bad escape");
      }
    }
  }
  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) error("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<uint32_t>(h - 'A' + 10);
      else
        error("bad hex digit in \\u escape");
    }
    return v;
  }
  uint32_t parse_code_point() {
    uint32_t v = hex4();
    if (v >= 0xD800 && v <= 0xDBFF) {  // a surrogate pair
      if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
        error("unpaired surrogate");
      pos_ += 2;
      const uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) error("unpaired surrogate");
      v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
    } else if (v >= 0xDC00 && v <= 0xDFFF) {
      error("unpaired surrogate");
    }
    return v;
  }
  static void append_utf8(uint32_t v, std::string& out) {
    if (v < 0x80) {
      out.push_back(static_cast<char>(v));
    } else if (v < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (v >> 6)));
      out.push_back(static_cast<char>(0x80 | (v & 0x3F)));
    } else if (v < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (v >> 12)));
      out.push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (v & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (v >> 18)));
      out.push_back(static_cast<char>(0x80 | ((v >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (v & 0x3F)));
    }
  }

  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;
};

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t v;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      v = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= extra; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      v = (v << 6) | (d & 0x3F);
    }
    if ((extra == 1 && v < 0x80) || (extra == 2 && v < 0x800) || (extra == 3 && v < 0x10000) ||
        v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

const char* dtype_code(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return "BOOL";
    case DType::Int64:
      return "I64";
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
  }
  return "?";
}

bool dtype_from_code(const std::string& code, DType* out) {
  for (DType d : {DType::Bool, DType::Int64, DType::Float32, DType::Float64}) {
    if (code == dtype_code(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

[[noreturn]] void save_error(int error, const std::string& problem) {
  throw std::system_error(error, std::generic_category(), "[save] " + problem);
}

void check_no_nul(const std::string& path, const char* op) {
  if (path.find('\0') != std::string::npos)
    throw std::invalid_argument(std::string(op) + " the path contains a NUL character");
}

// A name for the temporary that no one else can predict: 16 random hex digits.
std::string random_suffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 engine([] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }());
  const uint64_t bits = engine() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(bits));
  return buf;
}

// The process umask without changing it: /proc/self/status has it (Linux 4.7+); umask() is
// the fallback, which sets it for a moment (so a lock keeps our own readers in step).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Umask:", 0) == 0)
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return mask;
}

// write(2) until every byte is out, through short writes and EINTR.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, std::min<size_t>(size, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Writes the pieces to a fresh temporary beside `path` (O_EXCL: never an existing file or a
// link planted there), gives it the mode `path` has (or a new file's mode), fsyncs it and
// renames it over `path`, then fsyncs the directory. On failure the temporary is removed and
// `path` is untouched. A symlink at `path` is replaced by the new file (rename's semantics);
// the file it pointed to is left as it was.
void write_file_atomically(const std::string& path,
                           const std::vector<std::pair<const char*, size_t>>& pieces) {
  if (path.empty()) save_error(ENOENT, "can't write to an empty path");
  const size_t slash = path.rfind('/');
  const std::string directory =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  // The target's name (cut short to stay under NAME_MAX), hidden, with a random suffix.
  const std::string stem =
      (slash == std::string::npos ? "" : path.substr(0, slash + 1)) + "." + base.substr(0, 200);

  // The final mode: an existing target's permission bits, else what creating a file gives.
  // The temporary is 0600 until it is complete.
  struct stat existing;
  const mode_t mode = ::stat(path.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)
                          ? (existing.st_mode & 07777)
                          : (0666 & ~current_umask());

  std::string temporary;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temporary = stem + "." + random_suffix() + ".tmp";
    fd = ::open(temporary.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST && errno != EINTR)
      save_error(errno, "can't open a new temporary file in " + directory + " to write " + path);
  }
  if (fd < 0) save_error(EEXIST, "can't find a free temporary name in " + directory);

  auto fail_with = [&](int error, const std::string& problem) {
    ::close(fd);
    ::unlink(temporary.c_str());
    save_error(error, problem + " " + path + " (temporary " + temporary + ")");
  };
  for (const auto& [data, size] : pieces)
    if (const int error = write_all(fd, data, size)) fail_with(error, "writing failed for");
  if (::fchmod(fd, mode) != 0) fail_with(errno, "can't set the mode of the temporary for");
  if (::fsync(fd) != 0) fail_with(errno, "fsync failed for");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    save_error(error,
               "closing the temporary failed for " + path + " (temporary " + temporary + ")");
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    save_error(error, "can't move the temporary " + temporary + " to " + path);
  }
  // Make the rename itself durable. The new file is in place by now, so this is best effort:
  // some file systems refuse fsync on a directory, and failing here would claim `path` was not
  // written.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  check_no_nul(path, "[save]");
  std::string header = "{";
  std::vector<Tensor> contiguous;
  std::vector<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("[save] \"__metadata__\" is reserved and can't name a tensor");
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw std::invalid_argument("[save] the name \"" + name + "\" is used twice");
    if (!tensor.defined()) throw std::invalid_argument("[save] tensor \"" + name + "\" is None");
    Tensor t = tensor.detach().contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * itemsize(t.dtype());
    header += (names.empty() ? "" : ",") + json_string(name) + ":{\"dtype\":\"" +
              dtype_code(t.dtype()) + "\",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d)
      header += (d ? "," : "") + std::to_string(t.shape()[d]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
    contiguous.push_back(t);
    names.push_back(name);
  }
  if (!metadata.empty()) {
    header += std::string(names.empty() ? "" : ",") + "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_string(k) + ":" + json_string(v);
      first = false;
    }
    header += "}";
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';  // the data starts 8-byte aligned
  const uint64_t length = header.size();
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[static_cast<size_t>(i)] = static_cast<char>(length >> (8 * i));
  std::vector<std::pair<const char*, size_t>> pieces = {{prefix.data(), prefix.size()},
                                                        {header.data(), header.size()}};
  for (const Tensor& t : contiguous)
    pieces.emplace_back(static_cast<const char*>(t.data()),
                        static_cast<size_t>(t.numel()) * itemsize(t.dtype()));
  write_file_atomically(path, pieces);
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 8)
    fail(what, "file of " + std::to_string(bytes.size()) + " bytes is too short");
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i)
    header_length =
        (header_length << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (header_length > kMaxHeaderBytes || header_length > bytes.size() - 8)
    fail(what, "header length " + std::to_string(header_length) + " exceeds the file (" +
                   std::to_string(bytes.size()) + " bytes)");
  const std::string header = bytes.substr(8, static_cast<size_t>(header_length));
  if (!valid_utf8(header)) fail(what, "header is not valid UTF-8");
  const Json root = Parser(header, what).document();
  if (root.kind != Json::Kind::Object) fail(what, "header is not a JSON object");
  const uint64_t data_size = bytes.size() - 8 - header_length;
  const char* data = bytes.data() + 8 + header_length;

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  SafetensorsFile file;
  for (const auto& [name, entry] : root.members) {
    if (name == "__metadata__") {
      if (entry.kind != Json::Kind::Object) fail(what, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.members) {
        if (v.kind != Json::Kind::String) fail(what, "__metadata__ values must be strings");
        file.metadata[k] = v.text;
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\"";
    if (entry.kind != Json::Kind::Object) fail(what, where + " is not an object");
    const Json* dtype = entry.find("dtype");
    const Json* shape = entry.find("shape");
    const Json* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets || entry.members.size() != 3)
      fail(what, where + " must have exactly dtype, shape and data_offsets");
    DType dt;
    if (dtype->kind != Json::Kind::String || !dtype_from_code(dtype->text, &dt))
      fail(what, where + " has dtype " +
                     (dtype->kind == Json::Kind::String ? dtype->text : std::string("?")) +
                     "; allowed: F32, F64, I64, BOOL");
    if (shape->kind != Json::Kind::Array) fail(what, where + " shape is not an array");
    Shape dims;
    // span: the sizes' product with zeros read as 1, at most 2^60 as contiguous_strides asks
    // (a zero size makes count 0 however large the others are).
    uint64_t count = 1, span = 1;
    for (const Json& d : shape->items) {
      if (d.kind != Json::Kind::Integer || d.integer > static_cast<uint64_t>(INT64_MAX))
        fail(what, where + " shape holds a non-integer or huge size");
      if (__builtin_mul_overflow(count, d.integer, &count) ||
          __builtin_mul_overflow(span, std::max<uint64_t>(d.integer, 1), &span) ||
          span > (uint64_t{1} << 60))
        fail(what, where + " shape has more elements than 64 bits can count");
      dims.push_back(static_cast<int64_t>(d.integer));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(itemsize(dt)), &nbytes))
      fail(what, where + " needs more bytes than 64 bits can count");
    if (offsets->kind != Json::Kind::Array || offsets->items.size() != 2 ||
        offsets->items[0].kind != Json::Kind::Integer ||
        offsets->items[1].kind != Json::Kind::Integer)
      fail(what, where + " data_offsets must be two integers");
    const uint64_t begin = offsets->items[0].integer, end = offsets->items[1].integer;
    if (begin > end || end > data_size)
      fail(what, where + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] fall outside the " + std::to_string(data_size) + " data bytes");
    if (end - begin != nbytes)
      fail(what, where + " spans " + std::to_string(end - begin) + " bytes but its shape needs " +
                     std::to_string(nbytes));
    entries.push_back({name, dt, dims, begin, end});
  }
  // The byte ranges must tile the data exactly: no gaps, no overlaps, nothing left over.
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const Entry* e : sorted) {
    if (e->begin != expected)
      fail(what, "tensor \"" + e->name + "\" starts at byte " + std::to_string(e->begin) +
                     (e->begin < expected ? " inside the previous tensor (overlap)"
                                          : " after a gap of unused bytes") +
                     "; expected " + std::to_string(expected));
    expected = e->end;
  }
  if (expected != data_size)
    fail(what, std::to_string(data_size - expected) + " data bytes are not covered by any tensor");
  for (const Entry& e : entries) {
    if (e.dtype == DType::Bool) {  // a byte other than 0 or 1 is not a bool
      const unsigned char* p = reinterpret_cast<const unsigned char*>(data + e.begin);
      for (uint64_t k = 0; k < e.end - e.begin; ++k)
        if (p[k] > 1) fail(what, "tensor \"" + e.name + "\" holds a bool byte other than 0 or 1");
    }
    Shape byte_strides = contiguous_strides(e.shape);
    for (auto& s : byte_strides) s *= static_cast<int64_t>(itemsize(e.dtype));
    file.tensors.emplace_back(e.name,
                              from_strided_data(data + e.begin, e.shape, byte_strides, e.dtype));
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  check_no_nul(path, "[load]");
  std::error_code status;
  if (std::filesystem::is_directory(path, status))  // ifstream would read it as 0 bytes
    throw std::system_error(EISDIR, std::generic_category(), "[load] can't open " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::system_error(errno, std::generic_category(), "[load] can't open " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_safetensors(buffer.str(), path);
}

}  // namespace bprop
