#include "dicom/image.h"

#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <optional>

#include "core/error.h"
#include "dicom/io.h"
#include "dicom/folder_source.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

const std::string kData = PROCNODE_SHARED_DATA;

// The file's pixel values in modality units, through DCMTK (and OpenJPEG for JPEG 2000).
std::vector<double> ModalityValues(const std::string& path) {
  auto file = ReadDicomFile(path, path);
  const DicomImage image = DecodeDicomImage(*file->getDataset(), path);
  std::vector<double> values(image.SampleCount());
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(image.Sample(i)) * image.slope + image.intercept;
  return values;
}

// The same image in several transfer syntaxes decodes to the same voxels (DCMTK's RLE, JPEG
// lossless and JPEG-LS decoders, OpenJPEG for JPEG 2000; big endian; implicit VR).
TEST(DicomImage, LosslessTransferSyntaxesDecodeToTheSameVoxels) {
  const std::string folder = kData + "/debian-pydicom-test-files/";
  const auto reference = ModalityValues(folder + "MR_small.dcm");
  ASSERT_EQ(reference.size(), 64u * 64u);
  for (const char* name : {"MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                           "MR_small_expb.dcm", "MR_small_implicit.dcm"}) {
    EXPECT_TRUE(ModalityValues(folder + name) == reference) << name;
  }
  const std::string codecs = kData + "/codecs-pydicom-data/";
  const std::pair<std::string, std::string> lossless_pairs[] = {
      {folder + "MR_small_jp2klossless.dcm", folder + "MR_small.dcm"},
      {codecs + "emri_small_jpeg_2k_lossless.dcm", codecs + "emri_small.dcm"},
      {codecs + "MR2_J2KR.dcm", codecs + "MR2_UNCR.dcm"},
      {codecs + "693_J2KR.dcm", codecs + "693_UNCR.dcm"},
      {codecs + "emri_small_RLE.dcm", codecs + "emri_small.dcm"},
      {codecs + "emri_small_jpeg_ls_lossless.dcm", codecs + "emri_small.dcm"},
  };
  for (const auto& [compressed, plain] : lossless_pairs) {
    const auto decoded = ModalityValues(compressed);
    EXPECT_GT(decoded.size(), 0u) << compressed;
    EXPECT_TRUE(decoded == ModalityValues(plain)) << compressed << " differs from " << plain;
  }
  EXPECT_GT(ModalityValues(kData + "/codecs-pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm").size(), 0u);
}

// Every file of the malformed and transfer-syntax corpora either decodes or fails with a procnode
// Error whose message names the file; nothing crashes and no other exception escapes.
class CorpusFile : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusFile, LoadsOrFailsWithAMessageNamingTheFile) {
  const std::string path = GetParam();
  try {
    auto file = ReadDicomFile(path, path);
    const DicomImage image = DecodeDicomImage(*file->getDataset(), path);
    EXPECT_EQ(image.samples.size(), image.SampleCount() * (image.bits_allocated / 8));
    EXPECT_GT(image.SampleCount(), 0u);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(e.code(), ErrorCode::kInternal) << e.what();
  }
}

// From a file, large pixel data stays on disk until decoded and is read straight into the samples;
// from memory, DCMTK holds it already. Both must decode alike (signed, shifted, 8- and 16-bit):
// every corpus file and the scanner series' first files.
void ExpectFileAndBufferDecodeAlike(const std::string& path, int& compared) {
  std::unique_ptr<DcmFileFormat> from_file, from_bytes;
  std::optional<DicomImage> lazy, loaded;
  try {
    from_file = ReadDicomFile(path, path);
    lazy = DecodeDicomImage(*from_file->getDataset(), path);
  } catch (const Error&) {
  }
  try {
    from_bytes = ReadDicomBuffer(ReadFileBytes(path), path);
    loaded = DecodeDicomImage(*from_bytes->getDataset(), path);
  } catch (const Error&) {
  }
  ASSERT_EQ(lazy.has_value(), loaded.has_value()) << path << ": decodes one way only";
  if (!lazy) return;
  ++compared;
  EXPECT_TRUE(lazy->samples == loaded->samples) << path;
  EXPECT_EQ(lazy->max_sample, loaded->max_sample) << path;
  EXPECT_EQ(lazy->sample_type, loaded->sample_type) << path;
}

TEST(DicomImage, DecodesAFileAsItDecodesItsBytes) {
  int compared = 0;
  for (const auto& path : testing::CorpusFiles()) ExpectFileAndBufferDecodeAlike(path, compared);
  for (const char* file : {"/ct-chest-lung-dx-a0001/lung-kernel/1-01.dcm", "/dcm_qa_ct/In/GE/01.dcm",
                           "/mr-brain-sag-mprage/0001-1.3.12.2.1107.5.2.19.45152.2013030808110258929186035.dcm"}) {
    ExpectFileAndBufferDecodeAlike(kData + file, compared);
  }
  EXPECT_GE(compared, 50);
}

INSTANTIATE_TEST_SUITE_P(MalformedAndZoo, CorpusFile, ::testing::ValuesIn(testing::CorpusFiles()),
                         [](const auto& info) { return testing::CorpusTestName(info.param, info.index); });

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

TEST(SampleBuffers, AreReusedWhileAScopeAsksForIt) {
  constexpr std::size_t kBytes = 512 << 10;
  {
    const ReuseSampleBuffers reuse;
    void* first = AllocateSamples(kBytes);
    static_cast<char*>(first)[0] = 1;
    FreeSamples(first, kBytes);
    void* again = AllocateSamples(kBytes);
    EXPECT_EQ(again, first) << "the freed mapping is handed out again";
    void* other = AllocateSamples(2 * kBytes);  // another size: a fresh mapping
    EXPECT_NE(other, first);
    FreeSamples(other, 2 * kBytes);
    FreeSamples(again, kBytes);
  }
}

}  // namespace
}  // namespace procnode
