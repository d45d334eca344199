#include "dicom/element_index.h"

#include <algorithm>

namespace procnode {
namespace {

thread_local ScopedElementIndex* innermost = nullptr;

uint32_t Key(const DcmTagKey& tag) { return static_cast<uint32_t>(tag.getGroup()) << 16 | tag.getElement(); }

}  // namespace

ScopedElementIndex::ScopedElementIndex(DcmItem& item) : item_(&item), outer_(innermost) {
  elements_.reserve(item.card());
  // nextInContainer from the element just returned is one step of the list, not a walk.
  for (DcmObject* object = item.nextInContainer(nullptr); object != nullptr; object = item.nextInContainer(object)) {
    elements_.emplace_back(Key(object->getTag()), static_cast<DcmElement*>(object));
  }
  // DCMTK keeps an item's elements sorted by tag; the first of equal tags is DCMTK's answer too.
  std::stable_sort(elements_.begin(), elements_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  innermost = this;
}

ScopedElementIndex::~ScopedElementIndex() { innermost = outer_; }

DcmElement* FindElement(DcmItem& item, const DcmTagKey& tag) {
  for (const ScopedElementIndex* index = innermost; index != nullptr; index = index->outer_) {
    if (index->item_ != &item) continue;
    const uint32_t key = Key(tag);
    const auto it = std::lower_bound(index->elements_.begin(), index->elements_.end(), key,
                                     [](const auto& entry, uint32_t k) { return entry.first < k; });
    return it != index->elements_.end() && it->first == key ? it->second : nullptr;
  }
  DcmElement* found = nullptr;
  return item.findAndGetElement(tag, found).good() ? found : nullptr;
}

}  // namespace procnode
