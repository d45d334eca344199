// procnode's built-in processors. Each registers itself into a ProcessorRegistry; a node's
// registry holds these and, in later issues, external tools. A new built-in adds its Register
// function here and its line in RegisterBuiltinProcessors: nothing else (routing, the pipeline,
// REST and the command line read the registry).
#pragma once

#include "processors/processor.h"

namespace procnode {

void RegisterVolumeStats(ProcessorRegistry& registry);     // "volume-stats"
void RegisterLungEmphysema(ProcessorRegistry& registry);   // "lung-emphysema"
void RegisterBoneDensity(ProcessorRegistry& registry);     // "bone-density"
void RegisterRadiomics(ProcessorRegistry& registry);       // "radiomics"
// "mr-normalize": built where ITK is (PROCNODE_HAVE_ITK), registered only there.
void RegisterMrNormalize(ProcessorRegistry& registry);

void RegisterBuiltinProcessors(ProcessorRegistry& registry);

// A registry of the built-ins alone, made once (command line, tests). Immutable, thread-safe.
const ProcessorRegistry& BuiltinProcessors();

}  // namespace procnode
