// A sorted index of a dataset's top-level elements, for readers that ask a parsed dataset for
// dozens of attributes: DCMTK finds an element by walking its element list from the start (an
// absent one costs a walk of the whole list), and a conversion asks each file for about fifty,
// many near the end of the list or absent. While a ScopedElementIndex lives on a thread, the
// attribute readers of dicom/image.h (DicomString, DicomNumber, AttributeNumbers, DicomBytes and
// the image header's) find that dataset's top-level elements by binary search instead.
// The dataset must neither gain nor lose top-level elements while its index lives (reading
// values, decoding pixels in place and reading sequence items are fine).
#pragma once

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace procnode {

class ScopedElementIndex {
 public:
  explicit ScopedElementIndex(DcmItem& item);
  ~ScopedElementIndex();
  ScopedElementIndex(const ScopedElementIndex&) = delete;
  ScopedElementIndex& operator=(const ScopedElementIndex&) = delete;

 private:
  friend DcmElement* FindElement(DcmItem& item, const DcmTagKey& tag);
  DcmItem* item_;
  ScopedElementIndex* outer_;                             // the index this one hides, if any
  std::vector<std::pair<uint32_t, DcmElement*>> elements_;  // by tag (group << 16 | element)
};

// `item`'s top-level element `tag`, or nullptr: from this thread's index of `item` when one lives,
// else DCMTK's search.
DcmElement* FindElement(DcmItem& item, const DcmTagKey& tag);

}  // namespace procnode
