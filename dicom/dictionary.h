// DCMTK's data dictionary, compiled in.
//
// DCMTK reads its dictionary from text files (Debian: /usr/share/libdcmtk17/dicom.dic and
// private.dic) the first time any DICOM object is touched: about 8 ms, as long as converting a
// small series. The build writes the same entries as a table (dicom_dictionary_gen, with DCMTK's
// own parser) and a short-lived program installs them instead in about 1.5 ms.
//
// UseCompiledDataDictionary() must run before anything touches DCMTK's dictionary and before any
// other thread starts (it sets and restores DCMDICTPATH); call it first thing in main(). It does
// nothing when DCMDICTPATH is set (an explicit choice wins) or when the dictionary already exists.
// Not for the plugin: Orthanc has loaded its dictionary before the plugin starts.
#pragma once

class DcmDataDictionary;

namespace procnode {

// Returns true when the compiled-in dictionary was installed.
bool UseCompiledDataDictionary();

// Adds every entry of the compiled-in table to `dictionary` (what UseCompiledDataDictionary does to
// DCMTK's global one); for tests that compare it with a dictionary read from the files.
void AddCompiledDataDictionary(DcmDataDictionary& dictionary);

// The number of entries in the compiled-in table.
int CompiledDataDictionarySize();

}  // namespace procnode
