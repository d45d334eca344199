#include "pg/dsn.h"

#include <gtest/gtest.h>

namespace procnode {
namespace {

TEST(PgDsn, UrisGetAConnectAndAStatementTimeout) {
  EXPECT_EQ(WithSessionDefaults("postgresql://u@db:5433/jobs", 5, 60),
            "postgresql://u@db:5433/jobs?connect_timeout=5&options=-c%20statement_timeout%3D60000");
  EXPECT_EQ(WithSessionDefaults("postgresql://u@db/jobs?sslmode=require", 5, 60),
            "postgresql://u@db/jobs?sslmode=require&connect_timeout=5&options=-c%20statement_timeout%3D60000");
}

TEST(PgDsn, WhatTheDsnSetsItselfIsKept) {
  EXPECT_EQ(WithSessionDefaults("postgresql://db/jobs?connect_timeout=30&options=-c%20x%3D1", 5, 60),
            "postgresql://db/jobs?connect_timeout=30&options=-c%20x%3D1");
  EXPECT_EQ(WithSessionDefaults("host=db dbname=jobs connect_timeout = 9 options='-c a=b'", 5, 60),
            "host=db dbname=jobs connect_timeout = 9 options='-c a=b'");
}

TEST(PgDsn, KeywordStringsGetTheSameDefaults) {
  EXPECT_EQ(WithSessionDefaults("host=db dbname=jobs", 5, 60),
            "host=db dbname=jobs connect_timeout=5 options='-c statement_timeout=60000'");
}

TEST(PgDsn, DescriptionsNeverCarryTheUserOrPassword) {
  EXPECT_EQ(DescribeDsn("postgresql://procnode:s3cret@db.example:5433/jobs?sslmode=require"), "db.example:5433/jobs");
  EXPECT_EQ(DescribeDsn("host=db port=6000 dbname=vault user=x password='p w'"), "db:6000/vault");
  EXPECT_EQ(DescribeDsn("dbname=jobs"), "localhost:5432/jobs");
}

}  // namespace
}  // namespace procnode
