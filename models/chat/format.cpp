// Python string formatting: printf-style ("%s: %5.2f" % (a, b)) and str.format ("{} {name}").
#include <fmt/args.h>

#include <cmath>

#include "models/chat/builtins.h"
#include "models/chat/text.h"

namespace strata::chat {
namespace {

// A decimal width, precision or index from a format string, refused beyond `max_bytes`: fmt
// pads to any width up to 2^31 (a 2 GiB string from "%2000000000d"), and std::stoll would throw
// out_of_range, a crash rather than a template error, on more digits than fit 64 bits.
size_t format_number(std::string_view digits, size_t max_bytes, const char* what) {
  if (digits.size() > 18 || std::stoull(std::string(digits)) > max_bytes)
    fault("format {} {} exceeds the output limit of {} bytes", what, digits, max_bytes);
  return size_t(std::stoull(std::string(digits)));
}

// Every run of digits in a fmt spec (fill digits, width, precision) checked as above.
void check_spec_numbers(std::string_view spec, size_t max_bytes) {
  for (size_t i = 0; i < spec.size();) {
    if (!std::isdigit(static_cast<unsigned char>(spec[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < spec.size() && std::isdigit(static_cast<unsigned char>(spec[j]))) ++j;
    format_number(spec.substr(i, j - i), max_bytes, "width or precision");
    i = j;
  }
}

// Formats one value with a fmt spec (Python's mini-language is close to fmt's).
std::string with_spec(const Value& v, const std::string& spec, char type, size_t max_bytes) {
  check_spec_numbers(spec, max_bytes);
  const std::string f = "{:" + spec + "}";
  try {
    if (type == 's' || type == 'r' || type == 'a') return fmt::format(fmt::runtime(f), type == 's' ? v.str() : v.repr());
    if (type == 'c') {
      std::string ch;
      if (v.is_string()) ch = v.as_string();
      else text::append_utf8(ch, char32_t(v.to_int()));
      return fmt::format(fmt::runtime(f), ch);
    }
    if (!v.is_number()) fault("%{} format: a real number is required, not {}", type, v.type_name());
    if (type == 'd' || type == 'i' || type == 'u' || type == 'x' || type == 'X' || type == 'o') {
      const int64_t i = v.is_float() ? int64_t(std::trunc(v.as_float())) : v.to_int();
      return fmt::format(fmt::runtime(f), i);
    }
    return fmt::format(fmt::runtime(f), v.to_float());
  } catch (const fmt::format_error& e) {
    fault("bad format specification '{}': {}", spec, e.what());
  }
}

}  // namespace

std::string percent_format(const std::string& fmt_str, const Value& args, size_t max_bytes) {
  std::vector<Value> positional;
  const bool mapping = args.is_dict();
  if (args.is_list() && args.as_list().tuple) positional = args.as_list().items;
  else positional.push_back(args);
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt_str.size(); ++i) {
    if (fmt_str[i] != '%') {
      out += fmt_str[i];
      continue;
    }
    if (++i >= fmt_str.size()) fault("incomplete format");
    if (fmt_str[i] == '%') {
      out += '%';
      continue;
    }
    const Value* value = nullptr;
    if (fmt_str[i] == '(') {
      const size_t close = fmt_str.find(')', i);
      if (close == std::string::npos) fault("incomplete format key");
      if (!mapping) fault("format requires a mapping");
      value = args.as_dict().find(std::string_view(fmt_str).substr(i + 1, close - i - 1));
      if (!value) fault("KeyError: '{}'", fmt_str.substr(i + 1, close - i - 1));
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt_str.size() && std::string_view("-+ 0#").find(fmt_str[i]) != std::string_view::npos) flags += fmt_str[i++];
    std::string width, precision;
    if (i < fmt_str.size() && fmt_str[i] == '*') {
      if (next >= positional.size()) fault("not enough arguments for format string");
      width = std::to_string(positional[next++].to_int());
      ++i;
    }
    while (i < fmt_str.size() && std::isdigit(static_cast<unsigned char>(fmt_str[i]))) width += fmt_str[i++];
    if (i < fmt_str.size() && fmt_str[i] == '.') {
      ++i;
      while (i < fmt_str.size() && std::isdigit(static_cast<unsigned char>(fmt_str[i]))) precision += fmt_str[i++];
      if (precision.empty()) precision.push_back('0');
    }
    while (i < fmt_str.size() && (fmt_str[i] == 'l' || fmt_str[i] == 'h' || fmt_str[i] == 'L')) ++i;
    if (i >= fmt_str.size()) fault("incomplete format");
    const char type = fmt_str[i];
    if (std::string_view("sradiuxXoeEfFgGc").find(type) == std::string_view::npos)
      fault("unsupported format character '{}'", type);
    if (!value) {
      if (next >= positional.size()) fault("not enough arguments for format string");
      value = &positional[next++];
    }
    const bool left = flags.find('-') != std::string::npos;
    const bool text_type = type == 's' || type == 'r' || type == 'a' || type == 'c';
    const bool zero = !left && !text_type && flags.find('0') != std::string::npos;
    std::string spec = left ? "<" : zero ? "" : ">";
    if (flags.find('+') != std::string::npos) spec += '+';
    else if (flags.find(' ') != std::string::npos) spec += ' ';
    if (flags.find('#') != std::string::npos) spec += '#';
    if (zero) spec += '0';
    spec += width;
    if (!precision.empty() && !(type == 'd' || type == 'i' || type == 'u' || type == 'c')) spec += "." + precision;
    if (!text_type) spec += (type == 'i' || type == 'u') ? 'd' : type == 'F' ? 'f' : type;
    if (type == 's' || type == 'r') {
      std::string s = type == 's' ? value->str() : value->repr();
      if (!precision.empty()) s = text::substr(s, 0, format_number(precision, max_bytes, "precision"));
      out += with_spec(Value(std::move(s)), left ? "<" + width : ">" + width, 's', max_bytes);
    } else {
      out += with_spec(*value, spec, type, max_bytes);
    }
  }
  if (!used_mapping && !mapping && next < positional.size())
    fault("not all arguments converted during string formatting");
  return out;
}

std::string str_format(const std::string& f, const Args& args, size_t max_bytes) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') ++i;
      else fault("Single '}}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = f.find('}', i);
    if (close == std::string::npos) fault("Single '{{' encountered in format string");
    std::string field = f.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    char conv = 's';
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      conv = bang + 1 < field.size() ? field[bang + 1] : 's';
      field.resize(bang);
    }
    const Value* v = nullptr;
    if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
      const size_t idx = field.empty() ? auto_index++ : format_number(field, max_bytes, "index");
      if (idx >= args.pos.size()) fault("Replacement index {} out of range for positional args tuple", idx);
      v = &args.pos[idx];
    } else {
      for (const auto& [k, val] : args.kw)
        if (k == field) v = &val;
      if (!v) fault("KeyError: '{}'", field);
    }
    const Value shown = conv == 'r' || conv == 'a' ? Value(v->repr()) : *v;
    if (spec.empty()) {
      out += shown.str();
      continue;
    }
    const char last = spec.back();
    const bool typed = std::isalpha(static_cast<unsigned char>(last));
    const char type = typed ? last : shown.is_string() ? 's' : shown.is_float() ? 'g' : 'd';
    out += with_spec(shown.is_bool() ? Value(shown.to_int()) : shown, spec, type == 'n' ? 'd' : type, max_bytes);
  }
  return out;
}

}  // namespace strata::chat
