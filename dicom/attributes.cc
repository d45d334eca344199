#include "dicom/attributes.h"

#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dctag.h>

namespace procnode {

std::optional<uint32_t> DicomKeywordToTag(const std::string& keyword) {
  if (keyword.empty()) return std::nullopt;
  DcmTag tag;
  if (DcmTag::findTagFromName(keyword.c_str(), tag).bad()) return std::nullopt;
  // findTagFromName also accepts "gggg,eeee"; routing wants names here, tags in "(gggg,eeee)".
  if (keyword.find(',') != std::string::npos) return std::nullopt;
  return static_cast<uint32_t>(tag.getGroup()) << 16 | tag.getElement();
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
