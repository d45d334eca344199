#include "processors/builtin.h"

namespace procnode {

void RegisterBuiltinProcessors(ProcessorRegistry& registry) {
  RegisterVolumeStats(registry);
  RegisterLungEmphysema(registry);
  RegisterBoneDensity(registry);
  RegisterRadiomics(registry);
#if PROCNODE_HAVE_ITK
  RegisterMrNormalize(registry);
#endif
}

const ProcessorRegistry& BuiltinProcessors() {
  static const ProcessorRegistry* registry = [] {
    auto* made = new ProcessorRegistry();
    RegisterBuiltinProcessors(*made);
    return made;
  }();
  return *registry;
}

}  // namespace procnode
