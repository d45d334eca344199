#include "dicom/attributes.h"

#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dctag.h>

#include <algorithm>
#include <unordered_map>

namespace procnode {
namespace {

// f(entry) for every named, non-private entry of the loaded data dictionary, under its read lock
// (normalBegin() is not const in DCMTK 3.6.7; nothing is changed under the lock).
template <typename F>
void ForEachNamedEntry(F&& f) {
  DcmDataDictionary& dictionary = const_cast<DcmDataDictionary&>(dcmDataDict.rdlock());
  for (auto it = dictionary.normalBegin(); it != dictionary.normalEnd(); ++it) {
    const DcmDictEntry* entry = *it;
    if (entry == nullptr || entry->getPrivateCreator() != nullptr || entry->getTagName() == nullptr) continue;
    f(*entry);
  }
  dcmDataDict.rdunlock();
}

uint32_t TagNumber(const DcmDictEntry& entry) { return static_cast<uint32_t>(entry.getGroup()) << 16 | entry.getElement(); }

}  // namespace

std::optional<uint32_t> DicomKeywordToTag(const std::string& keyword) {
  // findTagFromName also accepts "gggg,eeee"; routing wants names here, tags in "(gggg,eeee)".
  if (keyword.empty() || keyword.find(',') != std::string::npos) return std::nullopt;
  // The dictionary's standard names, read once: DCMTK's own lookup by name walks the whole
  // dictionary each time (a quarter of a million instructions per name).
  static const std::unordered_map<std::string, uint32_t> by_name = [] {
    std::unordered_map<std::string, uint32_t> names;
    ForEachNamedEntry([&](const DcmDictEntry& entry) { names.emplace(entry.getTagName(), TagNumber(entry)); });
    return names;
  }();
  if (const auto it = by_name.find(keyword); it != by_name.end()) return it->second;
  DcmTag tag;  // the rest (repeating groups, private names): DCMTK's lookup
  if (DcmTag::findTagFromName(keyword.c_str(), tag).bad()) return std::nullopt;
  return static_cast<uint32_t>(tag.getGroup()) << 16 | tag.getElement();
}

std::vector<DicomKeyword> DicomKeywords() {
  std::vector<DicomKeyword> out;
  ForEachNamedEntry([&](const DcmDictEntry& entry) {
    const std::string name = entry.getTagName();
    if (name.empty() || name.rfind("RETIRED_", 0) == 0 || name.rfind("ACR_NEMA_", 0) == 0) return;
    if (entry.getGroup() % 2 == 1 || entry.getElement() == 0x0000) return;  // private groups, group lengths
    out.push_back({name, TagNumber(entry), entry.getVR().getVRName()});
  });
  std::sort(out.begin(), out.end(), [](const DicomKeyword& a, const DicomKeyword& b) { return a.keyword < b.keyword; });
  out.erase(std::unique(out.begin(), out.end(), [](const DicomKeyword& a, const DicomKeyword& b) { return a.keyword == b.keyword; }),
            out.end());
  return out;
}

std::map<uint32_t, std::string> DatasetAttributes(DcmDataset& ds) {
  std::map<uint32_t, std::string> out;
  for (unsigned long i = 0; i < ds.card(); ++i) {
    DcmElement* element = ds.getElement(i);
    if (element == nullptr) continue;
    const DcmEVR vr = element->ident();
    if (vr == EVR_SQ || vr == EVR_OB || vr == EVR_OW || vr == EVR_OF || vr == EVR_OD || vr == EVR_OL ||
        vr == EVR_UN || vr == EVR_pixelSQ || vr == EVR_PixelData || vr == EVR_OverlayData) {
      continue;
    }
    OFString value;
    if (element->getOFStringArray(value).good()) {
      out[static_cast<uint32_t>(element->getGTag()) << 16 | element->getETag()] = value.c_str();
    }
  }
  return out;
}

}  // namespace procnode
