pub fn serve() {} pub fn router() {}
