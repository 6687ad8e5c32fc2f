// SPDX-License-Identifier: Apache-2.0
// pristine-symbolize: the symbolizer behind pristine-report (not meant to be
// run by hand; installed in libexec).
//
// Reads one request per line on stdin:
//     MODULE<TAB>BUILD_ID<TAB>ADDRESS
// (BUILD_ID in hex or "-", ADDRESS in hex: a return address relative to the
// module's load bias, as the library's reports record it) and writes one JSON
// object per line on stdout, in order:
//     {"frames": [{"function", "mangled", "offset", "file", "line", "column",
//                  "inlined"}...], "source": "module"|"debug"|null,
//      "error": null|"..."}
// `frames` lists the function containing the call and, when it was inlined,
// each caller it was inlined into, innermost first; `offset` (from the start
// of the ELF symbol) is given for the outermost, real function only. The
// address looked up is ADDRESS - 1 (the call instruction, not the return
// address).
//
// Symbols and lines come from elfutils' libdw: the module's own .symtab and
// DWARF, else its build-id debug file (DEBUGDIR/.build-id/xx/yyyy.debug, and
// what .gnu_debuglink names), DEBUGDIR being /usr/lib/debug unless
// --debug-dir says otherwise. A module whose build id differs from the
// recorded one (rebuilt or upgraded since) is not trusted: its debug file by
// build id is used instead, or nothing.
#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "json_string.h"

#ifndef PRISTINE_VERSION
#define PRISTINE_VERSION "unknown"
#endif

namespace {

using pristine_tools::JsonString;

std::string g_debug_dir = "/usr/lib/debug";
char* g_debuginfo_path = nullptr;  // for dwfl_standard_find_debuginfo
bool g_demangle = true;

std::string Demangle(const char* name) {
  if (name == nullptr) return "";
  if (!g_demangle || strncmp(name, "_Z", 2) != 0) return name;
  int status = -1;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string result = status == 0 && out != nullptr ? out : name;
  free(out);
  return result;
}

struct Frame {
  std::string function, mangled, file;
  long long offset = -1;
  int line = 0, column = 0;
  bool inlined = false;
};

// One module file (or debug file) reported to its own Dwfl at bias 0, so that
// addresses are the file's virtual addresses.
class Module {
 public:
  ~Module() {
    if (dwfl_ != nullptr) dwfl_end(dwfl_);
  }

  // Opens `path`; returns false with `error` set.
  bool Open(const std::string& path, std::string* error) {
    static const Dwfl_Callbacks kCallbacks = {
        nullptr,                       // find_elf: files are reported directly
        dwfl_standard_find_debuginfo,  // .gnu_debuglink and build-id debug files
        dwfl_offline_section_address,
        &g_debuginfo_path,
    };
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      *error = std::string("cannot open ") + path + ": " + strerror(errno);
      return false;
    }
    dwfl_ = dwfl_begin(&kCallbacks);
    // dwfl takes the descriptor over.
    mod_ = dwfl_ != nullptr ? dwfl_report_elf(dwfl_, path.c_str(), path.c_str(), fd, 0, false)
                            : nullptr;
    if (dwfl_ != nullptr) dwfl_report_end(dwfl_, nullptr, nullptr);
    if (mod_ == nullptr) {
      *error = path + ": " + (dwfl_ != nullptr ? dwfl_errmsg(-1) : "out of memory");
      if (dwfl_ == nullptr) close(fd);
      return false;
    }
    return true;
  }

  std::string BuildId() const {
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0;
    int n = dwfl_module_build_id(mod_, &bits, &vaddr);
    std::string hex;
    for (int i = 0; i < n; ++i) {
      char b[3];
      snprintf(b, sizeof b, "%02x", bits[i]);
      hex += b;
    }
    return hex;
  }

  std::vector<Frame> Lookup(GElf_Addr addr) {
    std::vector<Frame> frames;
    // The ELF symbol: the real function and the offset in it.
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* symname = dwfl_module_addrinfo(mod_, addr, &offset, &sym, nullptr, nullptr, nullptr);
    // Source line of the innermost (possibly inlined) code.
    std::string file;
    int line = 0, column = 0;
    if (Dwfl_Line* l = dwfl_module_getsrc(mod_, addr)) {
      const char* f = dwfl_lineinfo(l, nullptr, &line, &column, nullptr, nullptr);
      if (f != nullptr) file = f;
    }
    // Inlined frames, from the DWARF scopes around addr.
    Dwarf_Addr bias = 0;
    Dwarf_Die* cudie = dwfl_module_addrdie(mod_, addr, &bias);
    Dwarf_Die* scopes = nullptr;
    int nscopes = cudie != nullptr ? dwarf_getscopes(cudie, addr - bias, &scopes) : 0;
    if (nscopes > 0) {
      // The chain of DIEs enclosing the innermost scope, inlined instances
      // and the function they were inlined into included (as eu-addr2line -i).
      Dwarf_Die inner;
      Dwarf_Addr dbias = 0;
      Dwarf* dwarf = dwfl_module_getdwarf(mod_, &dbias);
      Dwarf_Off off = dwarf_dieoffset(&scopes[0]);
      free(scopes);
      scopes = nullptr;
      nscopes = dwarf != nullptr && dwarf_offdie(dwarf, off, &inner) != nullptr
                    ? dwarf_getscopes_die(&inner, &scopes)
                    : 0;
    }
    Dwarf_Files* files = nullptr;
    if (cudie != nullptr) dwarf_getsrcfiles(cudie, &files, nullptr);
    for (int i = 0; i < nscopes; ++i) {
      Dwarf_Die* die = &scopes[i];
      int tag = dwarf_tag(die);
      if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
      Frame f;
      f.inlined = tag == DW_TAG_inlined_subroutine;
      Dwarf_Attribute attr;
      const char* linkage = nullptr;
      if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != nullptr ||
          dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != nullptr) {
        linkage = dwarf_formstring(&attr);
      }
      const char* plain = dwarf_diename(die);
      if (!f.inlined && symname != nullptr) linkage = symname;
      f.mangled = linkage != nullptr ? linkage : (plain != nullptr ? plain : "");
      f.function = linkage != nullptr ? Demangle(linkage) : (plain != nullptr ? plain : "");
      f.file = file;
      f.line = line;
      f.column = column;
      if (!f.inlined) f.offset = symname != nullptr ? static_cast<long long>(offset) : -1;
      frames.push_back(f);
      if (!f.inlined) break;
      // The next frame out is at this inlined instance's call site.
      Dwarf_Word value = 0;
      file.clear();
      line = column = 0;
      if (dwarf_attr(die, DW_AT_call_file, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0 &&
          files != nullptr) {
        const char* name = dwarf_filesrc(files, value, nullptr, nullptr);
        if (name != nullptr) file = name;
      }
      if (dwarf_attr(die, DW_AT_call_line, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0) {
        line = static_cast<int>(value);
      }
      if (dwarf_attr(die, DW_AT_call_column, &attr) != nullptr &&
          dwarf_formudata(&attr, &value) == 0) {
        column = static_cast<int>(value);
      }
    }
    free(scopes);
    if (frames.empty() && symname != nullptr) {
      Frame f;
      f.mangled = symname;
      f.function = Demangle(symname);
      f.offset = static_cast<long long>(offset);
      f.file = file;
      f.line = line;
      f.column = column;
      frames.push_back(f);
    }
    return frames;
  }

 private:
  Dwfl* dwfl_ = nullptr;
  Dwfl_Module* mod_ = nullptr;
};

std::string DebugFileFor(const std::string& build_id) {
  if (build_id.size() < 4) return "";
  return g_debug_dir + "/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
}

struct Resolved {
  std::unique_ptr<Module> module;
  std::string source;  // "module" or "debug"
  std::string error;
};

Resolved Resolve(const std::string& path, const std::string& build_id) {
  Resolved r;
  std::string error;
  auto m = std::make_unique<Module>();
  if (!path.empty() && m->Open(path, &error)) {
    std::string actual = m->BuildId();
    if (build_id.empty() || actual == build_id) {
      r.module = std::move(m);
      r.source = "module";
      return r;
    }
    error = path + " has changed since the report (build id " + (actual.empty() ? "none" : actual) +
            ", recorded " + build_id + ")";
  }
  std::string debug = DebugFileFor(build_id);
  auto d = std::make_unique<Module>();
  std::string debug_error;
  if (!debug.empty() && access(debug.c_str(), F_OK) == 0 && d->Open(debug, &debug_error) &&
      d->BuildId() == build_id) {
    r.module = std::move(d);
    r.source = "debug";
    return r;
  }
  r.error = error.empty() ? "no file for this module" : error;
  if (!debug.empty()) r.error += "; no debug file " + debug;
  return r;
}

void Usage(std::ostream& out) {
  out << "usage: pristine-symbolize [--debug-dir DIR] [--no-demangle] < REQUESTS\n"
         "Symbolizes MODULE<TAB>BUILD_ID<TAB>ADDRESS lines for pristine-report (JSON lines out).\n";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--debug-dir" && i + 1 < argc) {
      g_debug_dir = argv[++i];
    } else if (a == "--no-demangle") {
      g_demangle = false;
    } else if (a == "--help") {
      Usage(std::cout);
      return 0;
    } else if (a == "--version") {
      std::cout << "pristine-symbolize " << PRISTINE_VERSION << "\n";
      return 0;
    } else {
      Usage(std::cerr);
      return 2;
    }
  }
  std::string path_list = "+:.debug:" + g_debug_dir;
  g_debuginfo_path = strdup(path_list.c_str());
  std::map<std::string, Resolved> modules;  // by path and build id
  std::string request;
  while (std::getline(std::cin, request)) {
    size_t t1 = request.find('\t');
    size_t t2 = t1 == std::string::npos ? std::string::npos : request.find('\t', t1 + 1);
    std::string out;
    if (t2 == std::string::npos) {
      out = "{\"frames\":[],\"source\":null,\"error\":\"malformed request\"}";
    } else {
      std::string path = request.substr(0, t1);
      std::string build_id = request.substr(t1 + 1, t2 - t1 - 1);
      if (build_id == "-") build_id.clear();
      unsigned long long address = strtoull(request.c_str() + t2 + 1, nullptr, 16);
      std::string key = path + '\0' + build_id;
      auto it = modules.find(key);
      if (it == modules.end()) it = modules.emplace(key, Resolve(path, build_id)).first;
      Resolved& r = it->second;
      out = "{\"frames\":[";
      if (r.module != nullptr && address > 0) {
        bool first = true;
        for (const Frame& f : r.module->Lookup(address - 1)) {
          out += first ? "" : ",";
          first = false;
          out += "{\"function\":" + (f.function.empty() ? "null" : JsonString(f.function));
          out += ",\"mangled\":" + (f.mangled.empty() ? "null" : JsonString(f.mangled));
          // The offset of the return address, as in the report.
          out += ",\"offset\":" + (f.offset < 0 ? std::string("null") : std::to_string(f.offset + 1));
          out += ",\"file\":" + (f.file.empty() ? "null" : JsonString(f.file));
          out += ",\"line\":" + (f.line > 0 ? std::to_string(f.line) : "null");
          out += ",\"column\":" + (f.column > 0 ? std::to_string(f.column) : "null");
          out += std::string(",\"inlined\":") + (f.inlined ? "true" : "false") + "}";
        }
      }
      out += "],\"source\":" + (r.source.empty() ? "null" : JsonString(r.source));
      out += ",\"error\":" + (r.error.empty() ? "null" : JsonString(r.error)) + "}";
    }
    std::cout << out << "\n";
  }
  std::cout.flush();
  return 0;
}
