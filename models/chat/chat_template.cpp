// Public face of the interpreter: parse once, render many times (concurrently if wished).
#include "models/chat/chat_template.h"

#include "models/chat/ast.h"
#include "models/chat/builtins.h"
#include "models/chat/evaluator.h"
#include "models/chat/lexer.h"
#include "models/chat/parser.h"
#include "storage/error.h"

namespace strata::chat {

struct ChatTemplate::Impl {
  std::string name;
  Body body;
};

ChatTemplate ChatTemplate::parse(std::string_view source, std::string name) {
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  const std::vector<Token> tokens = tokenize(source, impl->name);
  impl->body = parse_template(tokens, impl->name);
  ChatTemplate t;
  t.impl_ = std::move(impl);
  return t;
}

namespace {
template <typename Json>
std::string render_with(const std::string& name, const Body& body, const Json& context, std::optional<std::time_t> now,
                        const RenderLimits& limits) {
  if (!context.is_object() && !context.is_null())
    fail("{}: the render context must be a JSON object, got {}", name, context.type_name());
  auto globals = std::make_shared<Scope>();
  install_globals(*globals);
  if (context.is_object())
    for (const auto& [key, value] : context.items()) globals->set(key, Value::from_json(value));
  Evaluator ev(name, limits, now ? *now : std::time(nullptr));
  return ev.render(body, std::move(globals));
}
}  // namespace

std::string ChatTemplate::render(const nlohmann::json& context, std::optional<std::time_t> now,
                                 const RenderLimits& limits) const {
  return render_with(impl_->name, impl_->body, context, now, limits);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context, std::optional<std::time_t> now,
                                 const RenderLimits& limits) const {
  return render_with(impl_->name, impl_->body, context, now, limits);
}

const std::string& ChatTemplate::name() const { return impl_->name; }

const char* const kChatMlTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace strata::chat
