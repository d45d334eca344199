#include "dicom/ge_protocol.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>

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

}  // namespace
}  // namespace procnode
