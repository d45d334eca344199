#include "dicom/ge_protocol.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace procnode {
namespace {

// A protocol block as GE writes it: a 4-byte little-endian length, then gzip.
std::string Block(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(static_cast<uLong>(text.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  const uint32_t length = static_cast<uint32_t>(out.size());
  return std::string(reinterpret_cast<const char*>(&length), 4) + out;
}

TEST(GeProtocol, ReadsTheKeysOfTheCompressedBlock) {
  const auto protocol = ParseGeProtocol(Block("ENTRY \"1\"\nSLICEORDER \"1\"\nDELACQ \"0\"\nNOSLC \"15\"\nTR \"5000.0\"\n"));
  ASSERT_TRUE(protocol);
  EXPECT_EQ(protocol->at("SLICEORDER"), "1");
  EXPECT_EQ(protocol->at("TR"), "5000.0");
  EXPECT_EQ(protocol->at("NOSLC"), "15");
}

TEST(GeProtocol, AnythingElseIsNotABlock) {
  const std::string good = Block("SLICEORDER \"0\"\n");
  EXPECT_FALSE(ParseGeProtocol(""));
  EXPECT_FALSE(ParseGeProtocol("\x04\0\0\0abcd"));                // not gzip
  EXPECT_FALSE(ParseGeProtocol(good.substr(0, good.size() - 6)));  // truncated
  EXPECT_FALSE(ParseGeProtocol(Block(std::string(3 << 20, '\n'))));  // inflates past the bound
  EXPECT_FALSE(ParseGeProtocol(Block("\n\n")));                      // no keys
}

TEST(GeProtocol, ReadsTheSoftwareVersionAsGeWritesItInEachRelease) {
  struct Case {
    const char* text;
    double version;
    bool r27r3_or_later;
  };
  for (const Case& c : {Case{"27\\LX\\MR Software release:RX27.0_R02_1831.a", 27.0, false},
                        Case{"27\\LX\\MR Software release:RX27.0_R03_1831.a", 27.0, true},
                        Case{"28\\LX\\MR29.1_EA_2039.g", 29.1, true},
                        Case{"30\\LX\\SIGNA_LX1.MR30.0_R01_2236.d", 30.0, true},
                        Case{"27\\LX\\MR Software release:DV26.0_R01_1725.a", 26.0, false}}) {  // dcm_qa_nih
    SCOPED_TRACE(c.text);
    const auto v = ParseGeSoftwareVersion(c.text);
    ASSERT_TRUE(v);
    EXPECT_NEAR(v->version, c.version, 1e-9);
    EXPECT_EQ(v->r27r3_or_later, c.r27r3_or_later);
  }
  EXPECT_FALSE(ParseGeSoftwareVersion(""));
  EXPECT_FALSE(ParseGeSoftwareVersion("LX"));
  EXPECT_FALSE(ParseGeSoftwareVersion("27\\LX\\"));
}

TEST(GeProtocol, SliceTimesFollowTheSingleBandOrders) {
  const GeSoftwareVersion v26{26.0, false};
  // dcm_qa_nih's interleaved series: 15 slices, TR 5 s (dcm2niix's reference SliceTiming).
  const auto interleaved = GeSliceTimes(15, 1, 5000, 0, true, v26);
  const double step = 5000.0 / 15;
  const std::vector<double> expected{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7};
  ASSERT_EQ(interleaved.size(), 15u);
  for (std::size_t i = 0; i < 15; ++i) EXPECT_NEAR(interleaved[i], expected[i] * step, 1e-6) << i;
  const auto sequential = GeSliceTimes(4, 1, 2000, 400, false, v26);  // the group delay shortens the spread
  EXPECT_EQ(sequential, (std::vector<double>{0, 400, 800, 1200}));
  const auto even = GeSliceTimes(4, 1, 2000, 0, true, v26);
  EXPECT_EQ(even, (std::vector<double>{0, 1000, 500, 1500}));
}

TEST(GeProtocol, HyperBandSlicesShareTheirExcitationAsTheReleaseCountsThem) {
  // Before 27.0 R03: 16 slices at factor 2 are 8 excitations, made 9 (an even count gains one).
  const auto early = GeSliceTimes(16, 2, 900, 0, true, {26.0, false});
  const std::vector<double> slots{0, 5, 1, 6, 2, 7, 3, 8, 4};  // interleaved over 9
  ASSERT_EQ(early.size(), 16u);
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(early[i], slots[i % 9] * 100.0, 1e-9) << i;
  // From R03: 8 excitations, interleaved, the last two odd ones swapped.
  const auto late = GeSliceTimes(16, 2, 800, 0, true, {27.0, true});
  const std::vector<double> late_slots{0, 4, 1, 5, 2, 7, 3, 6};
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(late[i], late_slots[i % 8] * 100.0, 1e-9) << i;
  // Sequential, an odd count: nothing added or swapped; slices k and k + 3 together.
  const auto sequential = GeSliceTimes(9, 3, 300, 0, false, {27.0, true});
  EXPECT_EQ(sequential, (std::vector<double>{0, 100, 200, 0, 100, 200, 0, 100, 200}));
  // Unknown: HyperBand before 26, no slices, a delay that uses the whole TR.
  EXPECT_TRUE(GeSliceTimes(16, 2, 900, 0, true, {25.0, false}).empty());
  EXPECT_TRUE(GeSliceTimes(0, 1, 900, 0, true, {27.0, true}).empty());
  EXPECT_TRUE(GeSliceTimes(10, 1, 900, 900, true, {27.0, true}).empty());
}

}  // namespace
}  // namespace procnode
