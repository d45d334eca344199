#include "dicom/dictionary.h"

#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcdicent.h>

#include <cstdint>
#include <cstdlib>
#include <iterator>

namespace procnode {
namespace {

// Strings are offsets into kStrings (-1: none), so the table needs no relocation at start.
struct DictionaryRow {
  uint16_t group, element, upper_group, upper_element;
  int group_restriction, element_restriction, vr, vm_min, vm_max;
  int name, version, private_creator;
};

#include "dicom/dictionary_table.inc"

const char* String(int offset) { return offset < 0 ? nullptr : kStrings + offset; }

}  // namespace

int CompiledDataDictionarySize() { return static_cast<int>(std::size(kRows)); }

void AddCompiledDataDictionary(DcmDataDictionary& dictionary) {
  for (const DictionaryRow& row : kRows) {
    auto* entry = new DcmDictEntry(row.group, row.element, row.upper_group, row.upper_element,
                                   DcmVR(static_cast<DcmEVR>(row.vr)), String(row.name), row.vm_min, row.vm_max,
                                   String(row.version), OFFalse, String(row.private_creator));
    entry->setGroupRangeRestriction(static_cast<DcmDictRangeRestriction>(row.group_restriction));
    entry->setElementRangeRestriction(static_cast<DcmDictRangeRestriction>(row.element_restriction));
    dictionary.addEntry(entry);
  }
}

bool UseCompiledDataDictionary() {
  if (std::getenv("DCMDICTPATH") != nullptr) return false;
  // An empty external dictionary: DCMTK then builds only its skeleton (item and delimiter tags),
  // and the table below supplies the rest. Children of this process see no DCMDICTPATH.
  setenv("DCMDICTPATH", "/dev/null", 1);
  DcmDataDictionary& dictionary = dcmDataDict.wrlock();
  const bool fresh = dictionary.numberOfEntries() == 0;
  if (fresh) AddCompiledDataDictionary(dictionary);
  dcmDataDict.wrunlock();
  unsetenv("DCMDICTPATH");
  return fresh;
}

}  // namespace procnode
